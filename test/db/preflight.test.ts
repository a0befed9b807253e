// Each preflight refusal against two real MariaDB servers: exit "refused", the failing check named,
// nothing changed (a still writable, b still its replica).
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test, type TestContext } from 'node:test';
import type { DbSettings } from '../../src/db/config.js';
import { dbStatus } from '../../src/db/status.js';
import { checkReplication, LOCK_NAME, switchover, type SwitchoverResult } from '../../src/db/switchover.js';
import { databaseYaml, pairFor, pairSettings, startMariaDbPair, USERS, waitForReplica, type MariaDbPair } from '../support/mariadb.js';
import { waitFor } from '../support/process.js';

let pair: MariaDbPair | undefined;
let stateDir: string;
before(async () => {
  pair = await startMariaDbPair();
  stateDir = await mkdtemp(join(tmpdir(), 'dayshift-db-state-'));
});
after(async () => {
  await pair?.stop();
});
afterEach(async () => {
  await pair?.heal();
});

function need(t: TestContext): MariaDbPair | undefined {
  return pairFor(t, pair);
}

function settings(p: MariaDbPair, extra: Record<string, string | number> = {}, yaml = databaseYaml(p, extra)): Promise<DbSettings> {
  return pairSettings(p, stateDir, extra, yaml);
}

/** Asserts a refusal by exactly the named checks, and that the servers are as they were. */
async function assertRefused(s: DbSettings, result: SwitchoverResult, failing: string[]): Promise<void> {
  assert.equal(result.outcome, 'refused', result.message);
  assert.deepEqual(result.checks.filter((c) => !c.ok).map((c) => c.name), failing, result.message);
  assert.deepEqual(result.steps.map((x) => x.name), ['preflight']);
  const status = await dbStatus(s);
  assert.deepEqual(status.map((x) => [x.name, x.role, x.readOnly, x.replicaOf]), [['a', 'primary', false, undefined], ['b', 'replica', true, 'a']]);
}

test('check-replication passes on a healthy pair and names b as the only target', async (t) => {
  const p = need(t);
  if (!p) return;
  const check = await checkReplication(await settings(p));
  assert.equal(check.ok, true);
  assert.deepEqual(check.targets.map((x) => [x.from, x.to, x.outcome]), [['a', 'b', 'dry-run']]);
});

test('refused: the target is the primary itself', async (t) => {
  const p = need(t);
  if (!p) return;
  const result = await switchover(await settings(p), 'a', {});
  assert.equal(result.outcome, 'refused');
  assert.match(result.message, /a is not a replica/);
});

test('refused: replication stopped on the target', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p);
  await p.b.sql('STOP SLAVE');
  const result = await switchover(s, 'b', {});
  assert.equal(result.outcome, 'refused', result.message);
  assert.deepEqual(result.checks.filter((c) => !c.ok).map((c) => c.name), ['b: replication running', 'b: lag']);
  await p.b.sql('START SLAVE');
});

test('refused: replica lag over max_lag', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p, { max_lag: '1s' });
  await p.b.sql('STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY=30', 'START SLAVE');
  // Only the lag may fail the preflight: wait for the IO thread to reconnect (slower on a busy machine).
  await waitForReplica(p.a, p.b);
  // Seconds_Behind_Master of a delayed replica often reads 0; the position wait catches it anyway.
  await p.a.sql("INSERT INTO appdb.writes VALUES (2000001, 'lagging')");
  const result = await switchover(s, 'b', {});
  await assertRefused(s, result, ['b: lag']);
  assert.match(result.checks.find((c) => c.name === 'b: lag')!.detail, /did not apply the primary's position 0-1-\d+ within 1s/);
});

test('refused: a long transaction on the primary', async (t) => {
  const p = need(t);
  if (!p) return;
  // Only the transaction may fail the preflight: let the replica catch up first, and allow it time.
  await waitForReplica(p.a, p.b);
  const s = await settings(p, { long_transaction: '1s', max_lag: '30s' });
  const app = await (await import('mysql2/promise')).createConnection({ host: '127.0.0.1', port: p.a.port, user: USERS.app.user, password: USERS.app.password, database: 'appdb' });
  try {
    await app.query('BEGIN');
    await app.query("INSERT INTO writes VALUES (3000001, 'open')");
    // InnoDB serves INNODB_TRX from a cache it refreshes only when the last read is over 0.1 s old:
    // polling faster than that can keep the cache from before the transaction forever.
    await waitFor(
      'the transaction to be 2s old',
      async () => {
        const [row] = await p.a.sql('SELECT MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())) AS age FROM information_schema.INNODB_TRX');
        return Number(row?.age ?? 0) >= 2 ? true : undefined;
      },
      10_000,
      250,
    );
    await assertRefused(s, await switchover(s, 'b', {}), ['a: no long transactions']);
  } finally {
    await app.query('ROLLBACK');
    await app.end();
  }
});

test('refused: the switchover account lacks a grant', async (t) => {
  const p = need(t);
  if (!p) return;
  await p.a.sql("CREATE USER weak@'127.0.0.1' IDENTIFIED BY 'weak-pw'", "GRANT SLAVE MONITOR, PROCESS ON *.* TO weak@'127.0.0.1'");
  const yaml = databaseYaml(p).replaceAll(`user: ${USERS.tool.user}, password: ${USERS.tool.password}`, 'user: weak, password: weak-pw');
  const s = await settings(p, {}, yaml);
  await waitForReplica(p.a, p.b);
  const result = await switchover(s, 'b', {});
  assert.equal(result.outcome, 'refused', result.message);
  assert.deepEqual(result.checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]), [
    ['a: grants', 'weak lacks READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, CONNECTION ADMIN, RELOAD ON *.*'],
    ['b: grants', 'weak lacks READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, CONNECTION ADMIN, RELOAD ON *.*'],
  ], result.message);
});

test('refused: another run holds the lock', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p);
  const { FileStore } = await import('../../src/store/file.js');
  const store = await FileStore.open(stateDir);
  const lock = await store.lock(LOCK_NAME, 'another run', 60);
  try {
    const result = await switchover(s, 'b', {});
    assert.equal(result.outcome, 'refused');
    assert.match(result.message, /another switchover is running: another run/);
  } finally {
    await lock.release();
    await store.close();
  }
});

// Last: an errant transaction breaks replication for good once the primary writes again.
test('refused: an errant transaction on the target (written on the replica with sql_log_bin on)', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p);
  await p.b.sql('CREATE TABLE appdb.local_only (id INT PRIMARY KEY)');
  await assertRefused(s, await switchover(s, 'b', {}), ['b: no errant transactions']);
  pair = undefined;
  await p.stop();
});
