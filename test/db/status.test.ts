import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resolveDbSettings, type DbSettings } from '../../src/db/config.js';
import { dbStatus } from '../../src/db/status.js';
import { parseYamlWith } from '../../src/config/load.js';
import { databaseSchema } from '../../src/config/database-schema.js';
import { z } from 'zod';
import { requirePeer } from '../support/peers.js';
import { databaseYaml, startMariaDbPair, type MariaDbPair } from '../support/mariadb.js';

let pair: MariaDbPair | undefined;
before(async () => {
  pair = await startMariaDbPair();
});
after(async () => {
  await pair?.stop();
});

async function settings(p: MariaDbPair): Promise<DbSettings> {
  const parsed = parseYamlWith(databaseYaml(p), 'test.yaml', z.object({ state_dir: z.string().default('.dayshift'), database: databaseSchema }));
  return resolveDbSettings(parsed, p.dir);
}

test('status names the primary and the replica with its threads, lag and GTID positions', async (t) => {
  if (!pair) return void requirePeer(t, 'mariadbd', 'mariadb-server');
  const status = await dbStatus(await settings(pair));
  assert.equal(status[0]!.role, 'primary');
  assert.equal(status[1]!.role, 'replica');
  assert.equal(status[1]!.replicaOf, 'a');
  assert.equal(status[1]!.replication?.ioRunning, 'Yes');
  console.log(status);
});
