// A release whose database part is the origin comment's recipe, against two real MariaDB servers:
// ALTER on the replica (not binlogged), check replication, switch the roles, ALTER on the new replica.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, test, type TestContext } from 'node:test';
import { parse, stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import type { Dayshift } from '../../src/dayshift.js';
import { runDbStep } from '../../src/release/steps/database.js';
import { releaseConfig } from '../../src/release/plan.js';
import type { DbStep } from '../../src/release/types.js';
import { allUp, api, makeWorld, releaseIn, startInProcess, type World } from './harness.js';
import { databaseYaml, pairFor, startMariaDbPair, waitForReplica, type MariaDbPair } from '../support/mariadb.js';
import { findExecutable, requirePeer } from '../support/peers.js';

let pair: MariaDbPair | undefined;
let world: World;
let dayshift: Dayshift | undefined;
const client = findExecutable('mariadb');

before(async () => {
  pair = await startMariaDbPair();
  if (!pair || !client) return;
  // The migration's account: it may skip the binlog (SET sql_log_bin) and write through read_only.
  await pair.a.sql(
    "CREATE USER IF NOT EXISTS migrator@'127.0.0.1' IDENTIFIED BY 'migrator-pw'",
    "GRANT ALL ON *.* TO migrator@'127.0.0.1'",
  );
  await waitForReplica(pair.a, pair.b);
  const alter = `${client} -h 127.0.0.1 -P "$DAYSHIFT_DB_PORT" -u migrator -pmigrator-pw appdb -e "SET SESSION sql_log_bin=0; ALTER TABLE writes ADD COLUMN IF NOT EXISTS note VARCHAR(20) NULL"`;
  world = await makeWorld({
    release: {
      approval: 'auto',
      database: [
        { migrate: { run: alter, on: 'replica', title: 'add writes.note' } },
        'check-replication',
        'switchover',
        { migrate: { run: alter, on: 'replica', title: 'add writes.note' } },
      ],
    },
  });
  const config = parse(await readFile(world.configFile, 'utf8')) as Record<string, unknown>;
  await writeFile(
    world.configFile,
    stringify({ ...config, ...(parse(databaseYaml(pair)) as Record<string, unknown>) }),
  );
  dayshift = await startInProcess(world);
  await allUp(dayshift);
});
after(async () => {
  await dayshift?.close(1000);
  await world?.close();
  await pair?.stop();
});

/** The pair for test `t`, with Dayshift running on it; skipped when a peer is missing (failed in CI). */
function need(t: TestContext): MariaDbPair | undefined {
  const p = pairFor(t, pair);
  if (!p || !requirePeer(t, 'mariadb', 'mariadb-client')) return undefined;
  if (!dayshift) throw new Error('Dayshift did not start: see the error of the before hook');
  return p;
}

test('release.database: migrate the replica, check replication, switch over, migrate the old primary; then the clusters', async (t) => {
  const p = need(t);
  if (!p) return;
  const started = await api(dayshift!.adminUrl, dayshift!.token.value, 'POST', '/api/release/start', {
    version: '2.0',
  });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const release = await releaseIn(dayshift!, ['succeeded', 'failed'], 120_000);
  const failed = release.steps.find((s) => s.state === 'failed');
  assert.equal(release.state, 'succeeded', `${failed?.title}: ${failed?.detail}\n${failed?.output?.join('\n')}`);
  const db = release.steps.filter((s): s is DbStep => s.id.startsWith('db:'));
  assert.deepEqual(
    db.map((s) => s.kind),
    ['db-migrate', 'db-check-replication', 'db-switchover', 'db-migrate'],
  );
  assert.match(db[0]!.detail!, /^ran on b \(replica/);
  assert.match(db[2]!.detail!, /^b is the primary; write outage \d+ ms/);
  assert.equal(db[2]!.dbTarget, 'b', 'the chosen target is journalled for a resume');
  assert.match(db[3]!.detail!, /^ran on a \(replica/);
  // The database part came before the first cluster was touched.
  assert.ok(release.steps.findIndex((s) => s.kind === 'drain') > release.steps.indexOf(db[3]!));

  const [b] = await p.b.sql('SELECT @@global.read_only AS ro');
  const [a] = await p.a.sql('SELECT @@global.read_only AS ro');
  assert.deepEqual([Number(b!.ro), Number(a!.ro)], [0, 1], 'b writable, a read-only');
  for (const server of [p.a, p.b]) {
    const columns = await server.sql("SHOW COLUMNS FROM appdb.writes LIKE 'note'");
    assert.equal(columns.length, 1, `${server.name} has the new column`);
  }
  await waitForReplica(p.b, p.a);
});

test('a resumed switchover step keeps the target it chose: after a finished switchover it does not switch back', async (t) => {
  const p = need(t);
  if (!p) return;
  // As after a crash between the switchover and its step's success: b is the primary, a the only replica.
  const loaded = await loadConfigFile(world.configFile);
  const switchover = releaseConfig(loaded.config).database[2]!;
  const lines: string[] = [];
  const again = await runDbStep(switchover, {
    loaded,
    store: dayshift!.store,
    env: {},
    onLine: (line) => lines.push(line),
    target: 'b',
  });
  assert.match(again.detail, /^b is already the primary/);
  const [b] = await p.b.sql('SELECT @@global.read_only AS ro');
  assert.equal(Number(b!.ro), 0, 'b stays writable');
});
