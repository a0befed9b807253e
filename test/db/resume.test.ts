// The CLI as a child process: kill -9 at a chosen step (DAYSHIFT_DB_PAUSE_AT), then --resume. The
// writer endpoint is a TCP front following the state file, as `dayshift db front` runs it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadDbSettings, type DbSettings } from '../../src/db/config.js';
import { followWriterState } from '../../src/db/endpoint.js';
import { journalPath, readJournal } from '../../src/db/journal.js';
import { dbStatus } from '../../src/db/status.js';
import { TcpFront } from '../../src/tcp/front.js';
import { databaseYaml, pairFor, startMariaDbPair, type MariaDbPair } from '../support/mariadb.js';
import { waitFor } from '../support/process.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let pair: MariaDbPair | undefined;
let front: TcpFront;
let stopFollowing: () => void;
let configFile: string;
let settings: DbSettings;

before(async () => {
  pair = await startMariaDbPair();
  if (!pair) return;
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-db-cli-'));
  front = new TcpFront({ listen: { host: '127.0.0.1', port: 0 }, target: { host: pair.a.host, port: pair.a.port } });
  await front.start();
  configFile = join(dir, 'dayshift.yaml');
  await writeFile(
    configFile,
    `state_dir: state\n${databaseYaml(pair, { writer: `{listen: "127.0.0.1:${front.address().port}"}` })}`,
  );
  settings = await loadDbSettings(configFile);
  stopFollowing = followWriterState(settings, front);
});
after(async () => {
  stopFollowing?.();
  await front?.close();
  await pair?.stop();
});
afterEach(async () => {
  await pair?.heal();
});

function need(t: TestContext): MariaDbPair | undefined {
  return pairFor(t, pair);
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function dayshift(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<Ran>; stderr: () => string } {
  const child = spawn(process.execPath, [cli, 'db', ...args, '-c', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Ran>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

/** Runs the switchover to `to`, paused before `step`, and kills it with SIGKILL there. */
async function killAt(to: string, step: string): Promise<void> {
  const run = dayshift(['switchover', '--to', to, '--yes'], { DAYSHIFT_DB_PAUSE_AT: step });
  await waitFor(
    `the CLI to pause before ${step}`,
    async () => {
      if (run.child.exitCode !== null) throw new Error(`exited early: ${run.stderr()}`);
      return run.stderr().includes(`paused before ${step}`) ? true : undefined;
    },
    15_000,
  );
  run.child.kill('SIGKILL');
  const ended = await run.done;
  assert.equal(ended.code, null, 'killed by a signal');
}

async function roles(): Promise<string[][]> {
  return (await dbStatus(settings)).map((x) => [x.name, x.role, String(x.readOnly), x.replicaOf ?? '-']);
}

test('kill -9 while fenced (before drain): a plain run is refused, --resume rolls back (rollback A)', async (t) => {
  if (!need(t)) return;
  await killAt('b', 'drain');
  assert.equal((await readJournal(settings.stateDir))?.phase, 'fencing');
  assert.deepEqual((await roles())[0], ['a', 'read-only', 'true', '-'], 'a was fenced when the run died');

  const again = await dayshift(['switchover', '--to', 'b', '--yes']).done;
  assert.equal(again.code, 3, again.stdout + again.stderr);
  assert.match(again.stdout, /--resume/);

  const resumed = await dayshift(['switchover', '--resume', '--yes', '--json']).done;
  assert.equal(resumed.code, 6, resumed.stdout + resumed.stderr);
  assert.deepEqual(
    (JSON.parse(resumed.stdout) as { steps: { name: string }[] }).steps.map((x) => x.name),
    ['rollback-a'],
  );
  assert.deepEqual(await roles(), [
    ['a', 'primary', 'false', '-'],
    ['b', 'replica', 'true', 'a'],
  ]);
  assert.ok(!existsSync(journalPath(settings.stateDir)));
});

test('kill -9 after promotion, before publishing: --resume sees no write on b and rolls back (rollback B)', async (t) => {
  if (!need(t)) return;
  await killAt('b', 'publish');
  assert.equal((await readJournal(settings.stateDir))?.phase, 'publishing');
  assert.deepEqual((await roles())[1], ['b', 'primary', 'false', '-'], 'b was promoted when the run died');

  const resumed = await dayshift(['switchover', '--resume', '--yes']).done;
  assert.equal(resumed.code, 6, resumed.stdout + resumed.stderr);
  // Says what happened: rolled back (not "paused"), and why.
  assert.match(
    resumed.stdout,
    /^aborted and rolled back: resumed an interrupted switchover a → b at phase publishing; a is the writable primary again, b its replica$/m,
  );
  assert.doesNotMatch(resumed.stdout, /paused/);
  assert.deepEqual(await roles(), [
    ['a', 'primary', 'false', '-'],
    ['b', 'replica', 'true', 'a'],
  ]);
  assert.deepEqual(front.currentTarget(), { host: pair!.a.host, port: pair!.a.port });
});

test('kill -9 before promotion: --resume rolls back (rollback B, the endpoint never moved)', async (t) => {
  if (!need(t)) return;
  await killAt('b', 'promote');
  assert.equal((await readJournal(settings.stateDir))?.phase, 'promoting');
  const resumed = await dayshift(['switchover', '--resume', '--yes', '--json']).done;
  assert.equal(resumed.code, 6, resumed.stdout + resumed.stderr);
  assert.deepEqual(
    (JSON.parse(resumed.stdout) as { steps: { name: string }[] }).steps.map((x) => x.name),
    ['rollback-b'],
  );
  assert.deepEqual(await roles(), [
    ['a', 'primary', 'false', '-'],
    ['b', 'replica', 'true', 'a'],
  ]);
});

test('kill -9 after the point of no return: --resume re-attaches the old primary; then switch back', async (t) => {
  if (!need(t)) return;
  await killAt('b', 'reattach');
  assert.equal((await readJournal(settings.stateDir))?.phase, 'published');
  await waitFor(
    'the front to follow b',
    async () => (front.currentTarget().port === pair!.b.port ? true : undefined),
    5000,
  );

  const resumed = await dayshift(['switchover', '--resume', '--yes']).done;
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  console.log(resumed.stdout);
  assert.deepEqual(await roles(), [
    ['a', 'replica', 'true', 'b'],
    ['b', 'primary', 'false', '-'],
  ]);

  const back = await dayshift(['switchover', '--to', 'a', '--yes']).done;
  console.log(back.stdout);
  assert.equal(back.code, 0, back.stdout + back.stderr);
  assert.match(back.stdout, /write outage: \d+ms/);
  assert.deepEqual(await roles(), [
    ['a', 'primary', 'false', '-'],
    ['b', 'replica', 'true', 'a'],
  ]);
  assert.deepEqual(front.currentTarget(), { host: pair!.a.host, port: pair!.a.port });
});

test('an unknown server is a usage error (exit 2) naming the configured ones', async (t) => {
  if (!need(t)) return;
  const ran = await dayshift(['switchover', '--to', 'c', '--yes']).done;
  assert.equal(ran.code, 2);
  assert.match(ran.stderr, /unknown server "c"; configured servers: a, b/);
});

test('on a terminal without --yes the plan is shown and "n" changes nothing', async (t) => {
  if (!need(t)) return;
  // script(1) (util-linux, Essential in Debian) gives the CLI a pseudo-terminal.
  const command = [process.execPath, cli, 'db', 'switchover', '--to', 'b', '-c', configFile]
    .map((a) => `'${a}'`)
    .join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(
    'the confirmation question',
    async () => (out.includes('Switch the primary to b? [y/N]') ? true : undefined),
    15_000,
  );
  child.stdin.end('n\n');
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  assert.equal(code, 3, out);
  assert.match(out, /Plan: a → b/);
  assert.match(out, /not confirmed; nothing changed/);
  assert.deepEqual(await roles(), [
    ['a', 'primary', 'false', '-'],
    ['b', 'replica', 'true', 'a'],
  ]);
});

test('without a terminal and without --yes the switchover is refused', async (t) => {
  if (!need(t)) return;
  const ran = await dayshift(['switchover', '--to', 'b']).done;
  assert.equal(ran.code, 3);
  assert.match(ran.stderr, /add --yes/);
  assert.deepEqual(await roles(), [
    ['a', 'primary', 'false', '-'],
    ['b', 'replica', 'true', 'a'],
  ]);
});

test('dayshift db front forwards clients to the primary and reports its counters on SIGTERM', async (t) => {
  const p = need(t);
  if (!p) return;
  const run = dayshift(['front', '--listen', '127.0.0.1:0']);
  let out = '';
  run.child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const port = await waitFor(
    'the front to listen',
    async () => {
      if (run.child.exitCode !== null) throw new Error(`exited early: ${run.stderr()}`);
      const match = /listening on 127\.0\.0\.1:(\d+) → a /.exec(out);
      return match ? Number(match[1]) : undefined;
    },
    10_000,
  );
  const { createConnection } = await import('mysql2/promise');
  const conn = await createConnection({ host: '127.0.0.1', port, user: 'app', password: 'app-pw' });
  const [rows] = await conn.query<import('mysql2/promise').RowDataPacket[]>('SELECT @@server_id AS id');
  await conn.end();
  assert.equal(Number(rows[0]!.id), p.a.serverId);
  run.child.kill('SIGTERM');
  const ended = await run.done;
  assert.equal(ended.code, 0, ended.stderr);
  assert.match(ended.stdout, /stopped: 1 connection\(s\)/);
});
