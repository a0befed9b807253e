// Each preflight refusal against two real MariaDB servers: exit "refused", the failing check named,
// nothing changed (a still writable, b still its replica).
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test, type TestContext } from 'node:test';
import type { DbSettings } from '../../src/db/config.js';
import { dbStatus } from '../../src/db/status.js';
import { renderSummary } from '../../src/cli/db.js';
import { lagCheck } from '../../src/db/preflight.js';
import { checkReplication, LOCK_NAME, switchover, type SwitchoverResult } from '../../src/db/switchover.js';
import {
  databaseYaml,
  pairFor,
  pairSettings,
  startMariaDbPair,
  USERS,
  waitForReplica,
  type MariaDbPair,
} from '../support/mariadb.js';
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

function settings(
  p: MariaDbPair,
  extra: Record<string, string | number> = {},
  yaml = databaseYaml(p, extra),
): Promise<DbSettings> {
  return pairSettings(p, stateDir, extra, yaml);
}

/** Asserts a refusal by exactly the named checks, and that the servers are as they were. */
async function assertRefused(s: DbSettings, result: SwitchoverResult, failing: string[]): Promise<void> {
  assert.equal(result.outcome, 'refused', result.message);
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => c.name),
    failing,
    result.message,
  );
  assert.deepEqual(
    result.steps.map((x) => x.name),
    ['preflight'],
  );
  const status = await dbStatus(s);
  assert.deepEqual(
    status.map((x) => [x.name, x.role, x.readOnly, x.replicaOf]),
    [
      ['a', 'primary', false, undefined],
      ['b', 'replica', true, 'a'],
    ],
  );
}

test('check-replication passes on a healthy pair and names b as the only target', async (t) => {
  const p = need(t);
  if (!p) return;
  const check = await checkReplication(await settings(p));
  assert.equal(check.ok, true);
  assert.deepEqual(
    check.targets.map((x) => [x.from, x.to, x.outcome]),
    [['a', 'b', 'dry-run']],
  );
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
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => c.name),
    ['b: replication running', 'b: lag'],
  );
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
  assert.match(
    result.checks.find((c) => c.name === 'b: lag')!.detail,
    /did not apply the primary's position 0-1-\d+ within 1s/,
  );
  // The printed reason is what failed, never the part that passed.
  assert.match(
    renderSummary(result),
    /^refused, nothing changed: b: lag: (\d+s behind, over max_lag 1s; )?did not apply the primary's position 0-1-\d+ within 1s$/m,
  );
});

test('lag: a refusal names only the failing part', () => {
  assert.deepEqual(lagCheck(12, true, '0-1-9', 5), [false, '12s behind, over max_lag 5s']);
  assert.deepEqual(lagCheck(0, false, '0-1-9', 5), [false, "did not apply the primary's position 0-1-9 within 5s"]);
  assert.deepEqual(lagCheck(9, false, '', 5), [
    false,
    "9s behind, over max_lag 5s; did not apply the primary's position (empty) within 5s",
  ]);
  assert.deepEqual(lagCheck(null, false, '0-1-9', 5), [false, 'unknown (SQL thread not running)']);
  assert.deepEqual(lagCheck(2, true, '0-1-9', 5), [true, "2s behind; applied the primary's position 0-1-9 within 5s"]);
});

test('refused before anything changes: a wrong replication password (dry run and real run), naming each server', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p, {}, databaseYaml(p).replace(`password: ${USERS.repl.password}`, 'password: wrong'));
  for (const dryRun of [true, false]) {
    const result = await switchover(s, 'b', { dryRun });
    await assertRefused(s, result, ['b: replication account', 'a: replication account']);
    const failed = result.checks.filter((c) => !c.ok).map((c) => c.detail);
    assert.match(
      failed[0]!,
      new RegExp(
        `^cannot connect to b \\(127\\.0\\.0\\.1:${p.b.port}\\) as repl: Access denied for user 'repl'@'127\\.0\\.0\\.1' \\(using password: YES\\)`,
      ),
    );
    assert.match(
      failed[1]!,
      new RegExp(
        `^cannot connect to a \\(127\\.0\\.0\\.1:${p.a.port}\\) as repl: Access denied .*\\(check the user and password in database\\.replication, `,
      ),
    );
  }
  const ok = await switchover(await settings(p), 'b', { dryRun: true });
  assert.deepEqual(
    ok.checks.filter((c) => c.name.endsWith('replication account')).map((c) => [c.name, c.ok, c.detail]),
    [
      ['b: replication account', true, 'repl logs in and holds REPLICATION SLAVE'],
      ['a: replication account', true, 'repl logs in and holds REPLICATION SLAVE'],
    ],
  );
});

test('refused: the replication account lacks REPLICATION SLAVE', async (t) => {
  const p = need(t);
  if (!p) return;
  await p.a.sql("CREATE USER norepl@'127.0.0.1' IDENTIFIED BY 'norepl-pw'");
  await waitForReplica(p.a, p.b);
  const s = await settings(
    p,
    {},
    databaseYaml(p).replace(
      `replication: {user: ${USERS.repl.user}, password: ${USERS.repl.password}}`,
      'replication: {user: norepl, password: norepl-pw}',
    ),
  );
  const result = await switchover(s, 'b', { dryRun: true });
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]),
    [
      ['b: replication account', 'norepl lacks REPLICATION SLAVE ON *.* on b'],
      ['a: replication account', 'norepl lacks REPLICATION SLAVE ON *.* on a'],
    ],
  );
});

test('refused: the target replica is writable (read_only OFF), with how to keep it read-only', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p);
  await p.b.sql('SET GLOBAL read_only=OFF');
  const result = await switchover(s, 'b', {});
  assert.equal(result.outcome, 'refused', result.message);
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]),
    [
      [
        'b: replica is read-only',
        'no, it is writable: run SET GLOBAL read_only=ON on it, and put read_only=ON under [mariadbd] in its my.cnf so that a restart keeps it',
      ],
    ],
  );
  assert.deepEqual(
    result.steps.map((x) => x.name),
    ['preflight'],
  );
});

test('a wrong password or a stopped server: the refusal names the server and its address', async (t) => {
  const p = need(t);
  if (!p) return;
  const wrongA = databaseYaml(p).replace(
    `port: ${p.a.port}, user: ${USERS.tool.user}, password: ${USERS.tool.password}`,
    `port: ${p.a.port}, user: ${USERS.tool.user}, password: wrong`,
  );
  const denied = await switchover(await settings(p, {}, wrongA), 'b', {});
  assert.equal(denied.outcome, 'refused');
  assert.match(
    renderSummary(denied),
    new RegExp(
      `^refused, nothing changed: cannot connect to a \\(127\\.0\\.0\\.1:${p.a.port}\\) as switcher: Access denied for user 'switcher'@'127\\.0\\.0\\.1' \\(using password: YES\\) \\(check the user and password in database\\.servers \\(a\\), and the host part of the account's grant\\)$`,
      'm',
    ),
  );
  const { freePort } = await import('../../src/ports.js');
  const stopped = await freePort();
  const down = await switchover(
    await settings(p, {}, databaseYaml(p).replace(`port: ${p.b.port}`, `port: ${stopped}`)),
    'b',
    {},
  );
  assert.equal(down.outcome, 'refused');
  assert.match(
    renderSummary(down),
    new RegExp(
      `^refused, nothing changed: cannot connect to b \\(127\\.0\\.0\\.1:${stopped}\\) as switcher: .*ECONNREFUSED.* \\(is the server running and listening there\\?\\)$`,
      'm',
    ),
  );
});

test('refused: a long transaction on the primary', async (t) => {
  const p = need(t);
  if (!p) return;
  // Only the transaction may fail the preflight: let the replica catch up first, and allow it time.
  await waitForReplica(p.a, p.b);
  const s = await settings(p, { long_transaction: '1s', max_lag: '30s' });
  const app = await (
    await import('mysql2/promise')
  ).createConnection({
    host: '127.0.0.1',
    port: p.a.port,
    user: USERS.app.user,
    password: USERS.app.password,
    database: 'appdb',
  });
  try {
    await app.query('BEGIN');
    await app.query("INSERT INTO writes VALUES (3000001, 'open')");
    // InnoDB serves INNODB_TRX from a cache it refreshes only when the last read is over 0.1 s old:
    // polling faster than that can keep the cache from before the transaction forever.
    await waitFor(
      'the transaction to be 2s old',
      async () => {
        const [row] = await p.a.sql(
          'SELECT MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())) AS age FROM information_schema.INNODB_TRX',
        );
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
  await p.a.sql(
    "CREATE USER weak@'127.0.0.1' IDENTIFIED BY 'weak-pw'",
    "GRANT SLAVE MONITOR, PROCESS ON *.* TO weak@'127.0.0.1'",
  );
  const yaml = databaseYaml(p).replaceAll(
    `user: ${USERS.tool.user}, password: ${USERS.tool.password}`,
    'user: weak, password: weak-pw',
  );
  const s = await settings(p, {}, yaml);
  await waitForReplica(p.a, p.b);
  const result = await switchover(s, 'b', {});
  assert.equal(result.outcome, 'refused', result.message);
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]),
    [
      ['a: grants', 'weak lacks READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, CONNECTION ADMIN, RELOAD ON *.*'],
      ['b: grants', 'weak lacks READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, CONNECTION ADMIN, RELOAD ON *.*'],
    ],
    result.message,
  );
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
