import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/control/audit.js';

test('a failed audit write fails that record only; later records and reads work again', async () => {
  const base = await mkdtemp(join(tmpdir(), 'dayshift-audit-'));
  const dir = join(base, 'state');
  const audit = new AuditLog(dir);
  const actor = { who: 'token:admin', from: '127.0.0.1' };
  await assert.rejects(audit.record(actor, 'out', 'prod-a'), /ENOENT/);
  await mkdir(dir);
  await audit.record(actor, 'live', 'prod-a', { traffic: 'live' });
  const entries = await audit.tail(10);
  assert.deepEqual(
    entries.map((e) => [e.who, e.from, e.action, e.target, e.detail]),
    [['token:admin', '127.0.0.1', 'live', 'prod-a', { traffic: 'live' }]],
  );
  await rm(base, { recursive: true, force: true });
});
