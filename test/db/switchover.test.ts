// Switchover against two real MariaDB servers, with an application writer going through the TCP front.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test, type TestContext } from 'node:test';
import { renderSummary } from '../../src/cli/db.js';
import type { DbSettings } from '../../src/db/config.js';
import { journalPath } from '../../src/db/journal.js';
import { dbStatus } from '../../src/db/status.js';
import { switchover, type SwitchoverResult } from '../../src/db/switchover.js';
import { TcpFront } from '../../src/tcp/front.js';
import {
  pairFor,
  pairSettings,
  startMariaDbPair,
  startWriter,
  waitForReplica,
  type MariaDbPair,
} from '../support/mariadb.js';
import { waitFor } from '../support/process.js';

let pair: MariaDbPair | undefined;
let front: TcpFront;
let stateDir: string;

before(async () => {
  pair = await startMariaDbPair();
  if (!pair) return;
  stateDir = await mkdtemp(join(tmpdir(), 'dayshift-db-state-'));
  front = new TcpFront({ listen: { host: '127.0.0.1', port: 0 }, target: { host: pair.a.host, port: pair.a.port } });
  await front.start();
});
after(async () => {
  await front?.close();
  await pair?.stop();
});
afterEach(async () => {
  await pair?.heal();
});

function need(t: TestContext): MariaDbPair | undefined {
  return pairFor(t, pair);
}

function settings(p: MariaDbPair, extra: Record<string, string | number> = {}): Promise<DbSettings> {
  return pairSettings(p, stateDir, { writer: `{listen: "127.0.0.1:${front.address().port}"}`, ...extra });
}

function printSteps(label: string, result: SwitchoverResult): void {
  console.log(
    `${label}: ${result.outcome}, write outage ${result.outageMs} ms; ${result.steps.map((s) => `${s.name} ${s.ms}ms`).join(', ')}`,
  );
}

async function ids(db: MariaDbPair['a']): Promise<Set<number>> {
  return new Set((await db.sql('SELECT id FROM appdb.writes')).map((r) => Number(r.id)));
}

async function checksum(db: MariaDbPair['a']): Promise<string> {
  const [row] = await db.sql('CHECKSUM TABLE appdb.writes');
  return String(row!.Checksum);
}

test('switchover a → b → a under a writer through the TCP front: no acknowledged write lost, checksums equal', async (t) => {
  const p = need(t);
  if (!p) return;
  // The hook records what it was told, to check the variables other endpoints (DNS, ProxySQL) get.
  const hookLog = join(stateDir, 'hook.log');
  const hook = `echo "$DAYSHIFT_DB_OLD_PRIMARY:$DAYSHIFT_DB_OLD_PRIMARY_PORT>$DAYSHIFT_DB_NEW_PRIMARY:$DAYSHIFT_DB_NEW_PRIMARY_HOST:$DAYSHIFT_DB_NEW_PRIMARY_PORT" >> ${JSON.stringify(hookLog)}`;
  const s = await settings(p, {
    writer: `{listen: "127.0.0.1:${front.address().port}", hook: ${JSON.stringify(hook)}}`,
  });
  const writer = startWriter('127.0.0.1', front.address().port);
  try {
    await waitFor('writes before the switchover', async () => (writer.acked.length >= 50 ? true : undefined), 10_000);
    const forth = await switchover(s, 'b', { front });
    printSteps('a → b', forth);
    assert.equal(forth.outcome, 'done', forth.message);
    assert.deepEqual(front.currentTarget(), { host: p.b.host, port: p.b.port });
    const mid = writer.acked.length;
    await waitFor('writes on b', async () => (writer.acked.length >= mid + 50 ? true : undefined), 10_000);
    const back = await switchover(s, 'a', { front });
    printSteps('b → a', back);
    assert.equal(back.outcome, 'done', back.message);
    const end = writer.acked.length;
    await waitFor('writes on a again', async () => (writer.acked.length >= end + 50 ? true : undefined), 10_000);
  } finally {
    await writer.stop();
  }
  console.log(
    `writer: ${writer.acked.length} acknowledged, longest gap ${Math.round(writer.maxGapMs())} ms, errors ${JSON.stringify([...writer.errors])}`,
  );
  await waitForReplica(p.a, p.b);
  for (const db of [p.a, p.b]) {
    const present = await ids(db);
    const lost = writer.acked.filter((id) => !present.has(id));
    assert.deepEqual(lost, [], `acknowledged writes missing on ${db.name}`);
  }
  assert.equal(await checksum(p.a), await checksum(p.b));
  assert.equal(
    await readFile(hookLog, 'utf8'),
    `a:${p.a.port}>b:127.0.0.1:${p.b.port}\nb:${p.b.port}>a:127.0.0.1:${p.a.port}\n`,
  );
  const status = await dbStatus(s);
  assert.deepEqual(
    status.map((x) => [x.name, x.role, x.replicaOf]),
    [
      ['a', 'primary', undefined],
      ['b', 'replica', 'a'],
    ],
  );
  assert.ok(!existsSync(journalPath(stateDir)), 'journal cleared');
});

test('drain then kill: an idle session holding an uncommitted write, and one with no transaction, are killed after the drain', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p, { drain: '300ms' });
  const { createConnection } = await import('mysql2/promise');
  const holder = await createConnection({
    host: '127.0.0.1',
    port: front.address().port,
    user: 'app',
    password: 'app-pw',
    database: 'appdb',
  });
  holder.on('error', () => undefined);
  await holder.query('BEGIN');
  await holder.query("INSERT INTO writes VALUES (5000001, 'uncommitted')");
  // Straight to a, not through the front: only the kill can close it (docs/database.md "Clients are disconnected").
  const idle = await createConnection({
    host: '127.0.0.1',
    port: p.a.port,
    user: 'app',
    password: 'app-pw',
    database: 'appdb',
  });
  idle.on('error', () => undefined);
  const forth = await switchover(s, 'b', { front });
  printSteps('drain and kill', forth);
  assert.equal(forth.outcome, 'done', forth.message);
  assert.equal(forth.sessionsKilled, 2);
  assert.match(
    forth.steps.find((x) => x.name === 'drain')!.detail,
    /^1 open transaction\(s\) left after the drain; 2 session\(s\) killed$/,
  );
  await assert.rejects(holder.query('COMMIT'), 'the killed session cannot commit');
  await assert.rejects(idle.query('SELECT 1'), 'the idle session was disconnected too');
  holder.destroy();
  idle.destroy();
  const back = await switchover(s, 'a', { front });
  assert.equal(back.outcome, 'done', back.message);
  await waitForReplica(p.a, p.b);
  for (const db of [p.a, p.b])
    assert.equal(
      (await db.sql('SELECT id FROM appdb.writes WHERE id = 5000001')).length,
      0,
      `no uncommitted row on ${db.name}`,
    );
});

test('rollback A: the replica cannot catch up in time → old primary writable again, endpoint unchanged', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p, { catchup: '1s' });
  await p.b.sql('STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY=5', 'START SLAVE');
  // The IO thread takes a moment to reconnect (longer on a busy machine): preflight must see it running.
  await waitForReplica(p.a, p.b);
  // Written once preflight has passed (b had everything then), so only the catch-up meets the delay.
  const onStep = async (step: { name: string }) => {
    if (step.name === 'preflight') await p.a.sql("INSERT INTO appdb.writes VALUES (1000001, 'delayed')");
  };
  const result = await switchover(s, 'b', { front, onStep });
  printSteps('rollback A', result);
  assert.equal(result.outcome, 'rolled-back', result.message);
  assert.deepEqual(
    result.steps.map((x) => [x.name, x.ok]),
    [
      ['preflight', true],
      ['fence', true],
      ['drain', true],
      ['freeze', true],
      ['catchup', false],
      ['rollback-a', true],
    ],
  );
  const [a] = await p.a.sql('SELECT @@global.read_only AS ro');
  assert.equal(Number(a!.ro), 0);
  assert.deepEqual(front.currentTarget(), { host: p.a.host, port: p.a.port });
  const [b] = await p.b.sql('SHOW SLAVE STATUS');
  assert.equal(Number(b!.Master_Port), p.a.port, 'b was not touched');
  assert.ok(!existsSync(journalPath(stateDir)));
});

test('rollback A: read_only cannot be set within lock_wait behind a running write', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p, { lock_wait: '1s' });
  const { createConnection } = await import('mysql2/promise');
  const app = await createConnection({
    host: '127.0.0.1',
    port: p.a.port,
    user: 'app',
    password: 'app-pw',
    database: 'appdb',
  });
  try {
    const slow = app.query("INSERT INTO writes SELECT 4000001, IF(SLEEP(4) = 0, 'slow', 'x')");
    await waitFor(
      'the slow INSERT to run',
      async () => {
        const rows = await p.a.sql(
          "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO writes SELECT 4000001%'",
        );
        return rows.length > 0 ? true : undefined;
      },
      5000,
    );
    const result = await switchover(s, 'b', { front });
    printSteps('rollback A (lock wait)', result);
    assert.equal(result.outcome, 'rolled-back', result.message);
    assert.deepEqual(
      result.steps.map((x) => [x.name, x.ok]),
      [
        ['preflight', true],
        ['fence', false],
        ['rollback-a', true],
      ],
    );
    assert.match(result.message, /Lock wait timeout/);
    await slow;
    const [a] = await p.a.sql('SELECT @@global.read_only AS ro, COUNT(*) AS n FROM appdb.writes WHERE id = 4000001');
    assert.deepEqual([Number(a!.ro), Number(a!.n)], [0, 1], 'a writable, and the slow write committed');
  } finally {
    await app.end();
  }
});

test('rollback B: the endpoint cannot be moved → b demoted again and re-attached, a writable', async (t) => {
  const p = need(t);
  if (!p) return;
  // The hook refuses to publish b, and accepts moving back to a.
  const s = await settings(p, {
    writer: `{listen: "127.0.0.1:${front.address().port}", hook: 'test "$DAYSHIFT_DB_NEW_PRIMARY" != b'}`,
  });
  const result = await switchover(s, 'b', { front });
  printSteps('rollback B', result);
  assert.equal(result.outcome, 'rolled-back', result.message);
  assert.deepEqual(result.steps.map((x) => [x.name, x.ok]).slice(-3), [
    ['promote', true],
    ['publish', false],
    ['rollback-b', true],
  ]);
  assert.deepEqual(front.currentTarget(), { host: p.a.host, port: p.a.port });
  const status = await dbStatus(s);
  assert.deepEqual(
    status.map((x) => [x.name, x.role, x.readOnly, x.replicaOf]),
    [
      ['a', 'primary', false, undefined],
      ['b', 'replica', true, 'a'],
    ],
  );
  assert.equal(status[1]!.replication?.sqlRunning, 'Yes');
});

test('failure after the point of no return: exit 7 with repair steps and a true summary; --resume after the fix finishes', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p, { catchup: '2s' });
  // Preflight logs in with the replication account, so break it after that: once b is published, its
  // account is renamed (not binlogged), and the old primary cannot replicate from b.
  const rename = (from: string, to: string) =>
    p.b.sql('SET SESSION sql_log_bin=0', `RENAME USER ${from}@'127.0.0.1' TO ${to}@'127.0.0.1'`);
  const onStep = async (step: { name: string }) => {
    if (step.name === 'publish') await rename('repl', 'repl_gone');
  };
  const failed = await switchover(s, 'b', { front, onStep });
  printSteps('after the point of no return', failed);
  assert.equal(failed.outcome, 'repair-needed', failed.message);
  assert.deepEqual(failed.steps.map((x) => [x.name, x.ok]).slice(-3), [
    ['publish', true],
    ['reattach', true],
    ['verify', false],
  ]);
  assert.match(failed.message, /b is the primary and serving writes, but a is not replicating from it: /);
  assert.match(
    failed.repair!.join('\n'),
    /on a \(127\.0\.0\.1:\d+\): SET GLOBAL read_only=ON; STOP SLAVE;[\s\S]*MASTER_DEMOTE_TO_SLAVE=1[\s\S]*--resume/,
  );
  assert.deepEqual(front.currentTarget(), { host: p.b.host, port: p.b.port }, 'writers stay on the new primary');
  assert.ok(existsSync(journalPath(stateDir)), 'the journal is kept for --resume');
  // The summary says what happened: the outage ended at the verified endpoint; nothing was rolled back.
  const summary = renderSummary(failed).split('\n');
  assert.match(
    summary[0]!,
    /^FAILED past the point of no return, repair needed: b is the primary and serving writes, but a is not replicating from it: verify: /,
  );
  assert.match(summary[1]!, /^write outage: \d+(\.\d+)?(ms|s) \(fence → endpoint verified on the new primary\)$/);
  assert.doesNotMatch(renderSummary(failed), /rollback|rolled back/);

  await rename('repl_gone', 'repl');
  const resumed = await switchover(s, '', { resume: true, front });
  assert.equal(resumed.outcome, 'done', resumed.message);
  assert.deepEqual(
    resumed.steps.map((x) => x.name),
    ['reattach', 'verify'],
  );
  assert.equal(resumed.outageMs, undefined, 'a resumed run did not see the fence, so it reports no outage');
  const back = await switchover(s, 'a', { front });
  assert.equal(back.outcome, 'done', back.message);
  assert.match(
    renderSummary(back),
    /^ok done: a is the primary; b replicates from it\nwrite outage: \d+(\.\d+)?(ms|s) \(fence → endpoint verified on the new primary\)$/m,
  );
});

test('a replica restarted after a switchover comes back writable: status and preflight flag it; read_only=ON in my.cnf keeps it read-only', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p);
  const forth = await switchover(s, 'b', { front });
  assert.equal(forth.outcome, 'done', forth.message);
  // The switchover fenced a with SET GLOBAL read_only=ON; MariaDB forgets it on a restart.
  await p.restart(p.a);
  await waitForReplica(p.b, p.a);
  const [a] = await dbStatus(s);
  assert.deepEqual([a!.role, a!.readOnly, a!.replicaOf], ['replica', false, 'b']);
  assert.match(
    a!.warnings?.join() ?? '',
    /^a is a replica but writable: .*read_only=ON under \[mariadbd\] in its my\.cnf/,
  );
  const refused = await switchover(s, 'a', { front });
  assert.equal(refused.outcome, 'refused', refused.message);
  assert.deepEqual(
    refused.checks.filter((c) => !c.ok).map((c) => c.name),
    ['a: replica is read-only'],
  );

  // What docs/database.md says to put in my.cnf.
  const cnf = join(p.dir, 'a-my.cnf');
  await writeFile(cnf, '[mariadbd]\nread_only=ON\n');
  await p.restart(p.a, { cnf });
  await waitForReplica(p.b, p.a);
  const [again] = await dbStatus(s);
  assert.deepEqual([again!.role, again!.readOnly, again!.warnings], ['replica', true, undefined]);
  const back = await switchover(s, 'a', { front });
  assert.equal(back.outcome, 'done', back.message);
});

test('dry run: preflight passes and nothing changes', async (t) => {
  const p = need(t);
  if (!p) return;
  const result = await switchover(await settings(p), 'b', { dryRun: true });
  assert.equal(result.outcome, 'dry-run', result.message);
  assert.ok(result.checks.length >= 10 && result.checks.every((c) => c.ok));
  assert.deepEqual(
    result.steps.map((x) => x.name),
    ['preflight'],
  );
});

/** An account that writes through read_only (MariaDB READ_ONLY ADMIN): what application accounts must not be. */
async function rogueInsert(p: MariaDbPair, id: number): Promise<string> {
  const { createConnection } = await import('mysql2/promise');
  const rogue = await createConnection({
    host: '127.0.0.1',
    port: p.a.port,
    user: 'rogue',
    password: 'rogue-pw',
    database: 'appdb',
  });
  try {
    await rogue.query('SET SESSION lock_wait_timeout=1');
    await rogue.query(`INSERT INTO writes VALUES (${id}, 'rogue')`);
    return 'written';
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  } finally {
    await rogue.end();
  }
}

test('fence: ftwrl stops an account that writes through read_only, until the old primary is re-attached', async (t) => {
  const p = need(t);
  if (!p) return;
  await p.a.sql(
    "CREATE USER rogue@'127.0.0.1' IDENTIFIED BY 'rogue-pw'",
    "GRANT READ_ONLY ADMIN ON *.* TO rogue@'127.0.0.1'",
    "GRANT INSERT ON appdb.* TO rogue@'127.0.0.1'",
  );
  await waitForReplica(p.a, p.b);
  const s = await settings(p, { fence: 'ftwrl' });
  let attempt = '';
  const onStep = async (step: { name: string }) => {
    if (step.name === 'freeze') attempt = await rogueInsert(p, 6000001);
  };
  const forth = await switchover(s, 'b', { front, onStep });
  printSteps('ftwrl', forth);
  assert.equal(forth.outcome, 'done', forth.message);
  assert.equal(attempt, 'ER_LOCK_WAIT_TIMEOUT', 'the read lock held the write off');
  assert.match(forth.steps.find((x) => x.name === 'drain')!.detail, /FLUSH TABLES WITH READ LOCK held/);
  const back = await switchover(s, 'a', { front });
  assert.equal(back.outcome, 'done', back.message);
});

// Last: leaves a with a stray transaction, so the pair is not reused.
test('fence: read_only: a write through read_only after the freeze is caught before re-attaching (exit 7)', async (t) => {
  const p = need(t);
  if (!p) return;
  const s = await settings(p);
  let attempt = '';
  const onStep = async (step: { name: string }) => {
    if (step.name === 'freeze') attempt = await rogueInsert(p, 6000002);
  };
  const result = await switchover(s, 'b', { front, onStep });
  printSteps('late write', result);
  assert.notEqual(result.outcome, 'refused', result.message);
  assert.equal(attempt, 'written', 'read_only alone does not stop READ_ONLY ADMIN');
  assert.equal(result.outcome, 'repair-needed', result.message);
  assert.match(
    result.message,
    /a took writes after the freeze \(now at 0-1-\d+, frozen at 0-1-\d+\); they are not on b/,
  );
  assert.match(result.repair!.join('\n'), /database\.fence: ftwrl/);
  const [a] = await p.a.sql('SHOW SLAVE STATUS');
  assert.equal(a?.Slave_SQL_Running, 'No', 'replication was not started on top of the stray write');
  pair = undefined;
  await p.stop();
});
