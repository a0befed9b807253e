import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { dbStatus } from '../../src/db/status.js';
import { databaseYaml, pairFor, pairSettings, startMariaDbPair, waitForReplica, type MariaDbPair } from '../support/mariadb.js';

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
  assert.deepEqual([b!.replication?.ioRunning, b!.replication?.sqlRunning, b!.replication?.lagSeconds, b!.replication?.gtidMode], ['Yes', 'Yes', 0, 'Slave_Pos']);
  assert.match(a!.executed!, /^0-1-\d+$/);
  assert.equal(b!.applied, a!.executed, 'the replica applied everything the primary wrote');
});

test('an unreachable server is reported, not thrown', async (t) => {
  const p = need(t);
  if (!p) return;
  const yaml = databaseYaml(p).replace(`port: ${p.b.port}`, 'port: 1');
  const [, b] = await dbStatus(await pairSettings(p, join(p.dir, 'state'), {}, yaml));
  assert.equal(b!.role, 'unreachable');
  assert.match(b!.error ?? '', /ECONNREFUSED/);
});
