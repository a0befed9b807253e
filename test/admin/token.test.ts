import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadAdminToken } from '../../src/admin/token.js';

test('a DAYSHIFT_TOKEN shorter than 16 characters is refused with the reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-token-'));
  const saved = process.env.DAYSHIFT_TOKEN;
  process.env.DAYSHIFT_TOKEN = 'admin';
  try {
    await assert.rejects(loadAdminToken(undefined, dir, dir), /DAYSHIFT_TOKEN is shorter than 16 characters/);
    process.env.DAYSHIFT_TOKEN = 'a-long-enough-token-value';
    assert.deepEqual(await loadAdminToken(undefined, dir, dir), {
      value: 'a-long-enough-token-value',
      source: 'DAYSHIFT_TOKEN',
      generated: false,
    });
  } finally {
    if (saved === undefined) delete process.env.DAYSHIFT_TOKEN;
    else process.env.DAYSHIFT_TOKEN = saved;
    await rm(dir, { recursive: true, force: true });
  }
});
