import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { renderStatus } from '../../src/cli/db.js';
import { dbStatus } from '../../src/db/status.js';
import {
  databaseYaml,
  pairFor,
  pairSettings,
  startMariaDbPair,
  waitForReplica,
  type MariaDbPair,
} from '../support/mariadb.js';

let pair: MariaDbPair | undefined;
before(async () => {
  pair = await startMariaDbPair();
});
after(async () => {
  await pair?.stop();
});

function need(t: TestContext): MariaDbPair | undefined {
  return pairFor(t, pair);
}

test('status names the primary and the replica with its threads, lag, read_only and GTID positions', async (t) => {
  const p = need(t);
  if (!p) return;
  await p.a.sql("INSERT INTO appdb.writes VALUES (1, 'status')");
  await waitForReplica(p.a, p.b);
  const [a, b] = await dbStatus(await pairSettings(p, join(p.dir, 'state')));
  assert.deepEqual([a!.name, a!.role, a!.readOnly, a!.flavour, a!.serverId], ['a', 'primary', false, 'mariadb', 1]);
  assert.deepEqual([b!.name, b!.role, b!.readOnly, b!.replicaOf, b!.serverId], ['b', 'replica', true, 'a', 2]);
  assert.deepEqual(
    [b!.replication?.ioRunning, b!.replication?.sqlRunning, b!.replication?.lagSeconds, b!.replication?.gtidMode],
    ['Yes', 'Yes', 0, 'Slave_Pos'],
  );
  assert.match(a!.executed!, /^0-1-\d+$/);
  assert.equal(b!.applied, a!.executed, 'the replica applied everything the primary wrote');
});

test('a writable replica is flagged, with how to keep it read-only across restarts', async (t) => {
  const p = need(t);
  if (!p) return;
  const settings = await pairSettings(p, join(p.dir, 'state'));
  assert.deepEqual(
    (await dbStatus(settings)).map((s) => s.warnings),
    [undefined, undefined],
    'a read-only replica has no warning',
  );
  await p.b.sql('SET GLOBAL read_only=OFF');
  try {
    const status = await dbStatus(settings);
    const warning =
      'b is a replica but writable: run SET GLOBAL read_only=ON on it, and put read_only=ON under [mariadbd] in its my.cnf so that a restart keeps it';
    assert.deepEqual(
      status.map((s) => s.warnings),
      [undefined, [warning]],
    );
    const printed = renderStatus(status).split('\n');
    assert.match(printed[2]!, /^b\s+127\.0\.0\.1:\d+\s+replica\s+a\s+Yes\/Yes\s+\d+s\s+OFF \(writable replica\)\s/);
    assert.equal(printed[3], `warning: ${warning}`);
  } finally {
    await p.b.sql('SET GLOBAL read_only=ON');
  }
});

test('an unreachable server is reported, not thrown', async (t) => {
  const p = need(t);
  if (!p) return;
  const yaml = databaseYaml(p).replace(`port: ${p.b.port}`, 'port: 1');
  const [, b] = await dbStatus(await pairSettings(p, join(p.dir, 'state'), {}, yaml));
  assert.equal(b!.role, 'unreachable');
  assert.match(b!.error ?? '', /ECONNREFUSED/);
});
