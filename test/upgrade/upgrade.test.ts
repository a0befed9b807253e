// `dayshift upgrade` with real processes: generations of `dayshift start` handing their listening
// sockets on under a bounded load of plain HTTP and HTTPS clients, keep-alive and new connections.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { freePort } from '../../src/ports.js';
import { selfSigned } from '../support/certs.js';
import { CLI, runCli } from '../support/cli.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, waitFor } from '../support/proxy.js';

/** Whether a process runs (signal 0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Kind {
  name: string;
  tls: boolean;
  keepAlive: boolean;
}

const REQUEST_TIMEOUT_MS = 20_000;

const KINDS: Kind[] = [
  { name: 'http keep-alive', tls: false, keepAlive: true },
  { name: 'http new connections', tls: false, keepAlive: false },
  { name: 'https keep-alive', tls: true, keepAlive: true },
  { name: 'https new connections', tls: true, keepAlive: false },
];

/**
 * Two clients of each kind sending GETs one after another until stopped (or maxMs). A GET sent on a
 * reused keep-alive connection at the instant the server closed it — ECONNRESET or EPIPE before any
 * byte of an answer — is retried once, as browsers do, and not counted as a failure.
 */
class Load {
  readonly served = new Map<string, number>();
  /** How many requests failed, by kind and error. */
  readonly failures = new Map<string, number>();
  retried = 0;
  private running = true;
  private readonly workers: Promise<void>[];
  private readonly agents: (http.Agent | https.Agent)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ports: { http: number; https: number },
    maxMs: number,
  ) {
    this.workers = KINDS.flatMap((kind) => [this.worker(kind), this.worker(kind)]);
    this.timer = setTimeout(() => (this.running = false), maxMs);
  }

  count(kind: string): number {
    return this.served.get(kind) ?? 0;
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await Promise.all(this.workers);
    for (const agent of this.agents) agent.destroy();
  }

  private async worker(kind: Kind): Promise<void> {
    const agent = kind.keepAlive
      ? kind.tls
        ? new https.Agent({ keepAlive: true, maxSockets: 1 })
        : new http.Agent({ keepAlive: true, maxSockets: 1 })
      : false;
    if (agent) this.agents.push(agent);
    while (this.running) {
      try {
        await this.get(kind, agent, true);
        this.served.set(kind.name, this.count(kind.name) + 1);
      } catch (err) {
        const failure = `${kind.name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
        this.failures.set(failure, (this.failures.get(failure) ?? 0) + 1);
      }
    }
  }

  private get(kind: Kind, agent: http.Agent | https.Agent | false, mayRetry: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const options = {
        host: '127.0.0.1',
        port: kind.tls ? this.ports.https : this.ports.http,
        path: '/',
        headers: { host: 'shop.test' },
        agent,
      };
      const onResponse = (res: http.IncomingMessage) => {
        answered = true;
        res.resume();
        res.on('error', reject);
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      };
      const req = kind.tls
        ? https.request({ ...options, servername: 'shop.test', rejectUnauthorized: false }, onResponse)
        : http.request(options, onResponse);
      // Bounded: a request left unanswered is a failure, not a hang.
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        const closedUnderIt = req.reusedSocket && !answered && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        if (mayRetry && closedUnderIt) {
          this.retried++;
          this.get(kind, agent, false).then(resolve, reject);
        } else reject(err);
      });
      req.end();
    });
  }
}

describe('dayshift upgrade', () => {
  let dir: string;
  let member: TestMember;
  let ports: { http: number; https: number; admin: number };
  let config: string;
  /** Every Dayshift process a test started, directly or by upgrading: stopped by PID after it. */
  const pids = new Set<number>();
  const children = new Set<ChildProcess>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-upgrade-'));
    member = await startMember('m1');
    ports = { http: await freePort(), https: await freePort(), admin: await freePort() };
    config = join(dir, 'dayshift.yaml');
  });
  afterEach(async () => {
    for (const pid of pids) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      await waitFor(() => !alive(pid), 10_000, `pid ${pid} to go`);
    }
    pids.clear();
    for (const child of children) if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    children.clear();
  });
  after(async () => {
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  function writeConfig(extra: Record<string, unknown> = {}): Promise<void> {
    return writeFile(
      config,
      stringify({
        listen: {
          http: `127.0.0.1:${ports.http}`,
          https: `127.0.0.1:${ports.https}`,
          tls: selfSigned(dir, 'shop', 'shop.test'),
        },
        admin: { listen: `127.0.0.1:${ports.admin}` },
        state_dir: join(dir, 'state'),
        log: { format: 'json' },
        clusters: { 'prod-a': { members: [{ url: member.url, route: 'a1' }] } },
        health: { enabled: false },
        sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['prod-a'] }] } },
        ...extra,
      }),
    );
  }

  /** The first generation; later ones write to its stdout and stderr, kept in output(). */
  async function start(
    nodeOptions: string[] = [],
    extra: Record<string, unknown> = {},
  ): Promise<{ child: ChildProcess; output: () => string }> {
    await writeConfig(extra);
    const child = spawn(process.execPath, [...nodeOptions, CLI, 'start', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    pids.add(child.pid!);
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c));
    child.stderr!.on('data', (c: Buffer) => (output += c));
    await waitFor(() => output.includes('started') || child.exitCode !== null, 20_000, 'dayshift to start');
    assert.equal(child.exitCode, null, output);
    return { child, output: () => output };
  }

  test('two upgrades in a row under HTTP and HTTPS load refuse no connection and fail no request', async () => {
    const first = await start();
    const load = new Load(ports, 120_000);
    try {
      const servedSince = (counts: Map<string, number>) => () =>
        KINDS.every((k) => load.count(k.name) >= (counts.get(k.name) ?? 0) + 20);
      await waitFor(servedSince(new Map()), 20_000, 'every kind of client to be served');

      // By the CLI: it returns once the new generation serves, with both versions and PIDs.
      const firstExit = once(first.child, 'exit');
      const upgraded = await runCli(['upgrade', '--config', config, '--json'], { timeoutMs: 90_000 });
      assert.equal(upgraded.code, 0, `${upgraded.stderr}\n${first.output()}`);
      const result = JSON.parse(upgraded.stdout) as { old: { pid: number; version: string }; new: { pid: number } };
      assert.equal(result.old.pid, first.child.pid);
      assert.match(result.old.version, /^\d+\.\d+\.\d+/);
      const second = result.new.pid;
      pids.add(second);
      assert.ok(alive(second), 'the new generation runs');
      const [code] = (await firstExit) as [number];
      assert.equal(code, 0, 'the old generation exits once its requests are done');
      await waitFor(servedSince(new Map(load.served)), 30_000, 'the second generation to serve every kind');

      // By SIGUSR2 to the running generation.
      process.kill(second, 'SIGUSR2');
      const third = await waitForNewGeneration(first.output, second);
      pids.add(third);
      await waitFor(() => !alive(second), 60_000, 'the second generation to exit');
      await waitFor(servedSince(new Map(load.served)), 30_000, 'the third generation to serve every kind');
    } finally {
      await load.stop();
    }
    assert.deepEqual(Object.fromEntries(load.failures), {}, `failed requests (${load.retried} retried)`);
    const audit = await readFile(join(dir, 'state', 'audit.log'), 'utf8');
    assert.deepEqual(
      audit
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { action: string; who: string })
        .filter((entry) => entry.action === 'upgrade')
        .map((entry) => entry.who),
      ['token:admin', 'signal:SIGUSR2'],
      'both upgrades are audited, with who asked',
    );
  });

  test('with workers: two upgrades, then a worker killed with kill -9, refuse no connection', async () => {
    const first = await start([], { workers: 2 });
    const load = new Load(ports, 150_000);
    let main = first.child.pid!;
    try {
      const servedSince = (counts: Map<string, number>) => () =>
        KINDS.every((k) => load.count(k.name) >= (counts.get(k.name) ?? 0) + 20);
      await waitFor(servedSince(new Map()), 20_000, 'every kind of client to be served');
      for (const how of ['cli', 'signal'] as const) {
        const before = main;
        const workersBefore = childPids(before);
        assert.equal(workersBefore.length, 2, `generation ${before} runs 2 workers`);
        if (how === 'cli') {
          const upgraded = await runCli(['upgrade', '--config', config, '--json'], { timeoutMs: 90_000 });
          assert.equal(upgraded.code, 0, `${upgraded.stderr}\n${first.output()}`);
          main = (JSON.parse(upgraded.stdout) as { new: { pid: number } }).new.pid;
        } else {
          process.kill(before, 'SIGUSR2');
          main = await waitForNewGeneration(first.output, before);
        }
        pids.add(main);
        await waitFor(
          () => !alive(before) && workersBefore.every((w) => !alive(w)),
          60_000,
          `generation ${before} and its workers to exit`,
        );
        await waitFor(servedSince(new Map(load.served)), 30_000, `generation ${main} to serve every kind`);
      }
      assert.deepEqual(Object.fromEntries(load.failures), {}, `failed across the upgrades (${load.retried} retried)`);

      const [victim] = childPids(main);
      process.kill(victim!, 'SIGKILL');
      await waitFor(
        () => childPids(main).length === 2 && !childPids(main).includes(victim!),
        30_000,
        'the killed worker to be replaced',
      );
      await waitFor(servedSince(new Map(load.served)), 30_000, 'every kind to be served after the kill');
    } finally {
      await load.stop();
    }
    // Only requests in flight on the killed worker can fail (kill -9 leaves it no chance to answer): a
    // reset, at most one per client. None is refused.
    const failures = [...load.failures.entries()];
    assert.ok(
      failures.every(([what]) => /ECONNRESET|socket hang up/.test(what)),
      `only resets, no refusals: ${JSON.stringify(failures)}`,
    );
    assert.ok(failures.reduce((n, [, count]) => n + count, 0) <= KINDS.length * 2, JSON.stringify(failures));
  });

  test('an upgrade whose new generation cannot start leaves the old one serving, and says why', async () => {
    const first = await start();
    await writeConfig({ listen: { http: `127.0.0.1:${ports.http}`, bogus: true } });
    const failed = await runCli(['upgrade', '--config', config], { timeoutMs: 90_000 });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /the new generation \(pid \d+\) could not start: .*listen\.bogus/);
    assert.match(failed.stderr, /this one serves on/);
    const child = Number(/the new generation \(pid (\d+)\)/.exec(failed.stderr)![1]);
    assert.ok(!alive(child), 'the failed generation is gone');
    assert.equal(first.child.exitCode, null, 'the old generation runs on');
    assert.equal((await request(ports.http, { host: 'shop.test' })).status, 200, 'and serves');
    // It takes changes again (they were held during the attempt).
    await writeConfig();
    const reload = await runCli(['reload', '--config', config]);
    assert.equal(reload.code, 0, reload.stderr);
  });

  test('a drain under way still counts the sessions the old generation saw', async (t) => {
    // Tomcat-like members: a request without a session gets JSESSIONID=<id>.<route>.
    const sessionMember = (route: string) =>
      startMember(route, (req, res) => {
        req.resume();
        const fresh = !/JSESSIONID=/.test(req.headers.cookie ?? '');
        res.writeHead(200, fresh ? { 'set-cookie': `JSESSIONID=S${route}.${route}; Path=/` } : {});
        res.end(route);
      });
    const [a1, b1] = await Promise.all([sessionMember('a1'), sessionMember('b1')]);
    t.after(() => Promise.all([a1.close(), b1.close()]));
    const first = await start([], {
      clusters: {
        'prod-a': { members: [{ url: a1.url, route: 'a1' }] },
        'prod-b': { members: [{ url: b1.url, route: 'b1' }] },
      },
      drain: { session_idle: '10m', deadline: '10m' },
      sites: {
        public: { hosts: ['*'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'route' } }] },
      },
    });
    let cookie = '';
    await waitFor(
      async () => {
        const reply = await request(ports.http, { host: 'shop.test' });
        cookie = String(reply.headers['set-cookie'] ?? '').split(';')[0]!;
        return reply.body === 'a1';
      },
      10_000,
      'a session on prod-a',
    );
    const drain = await runCli(['drain', 'prod-a', '--config', config]);
    assert.equal(drain.code, 0, drain.stderr);
    const token = (await readFile(join(dir, 'state', 'admin.token'), 'utf8')).trim();
    const sessions = async () => {
      const response = await fetch(`http://127.0.0.1:${ports.admin}/api/drain/prod-a`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return ((await response.json()) as { sessions?: number }).sessions;
    };
    assert.equal(await sessions(), 1);

    const upgraded = await runCli(['upgrade', '--config', config, '--json'], { timeoutMs: 90_000 });
    assert.equal(upgraded.code, 0, `${upgraded.stderr}\n${first.output()}`);
    pids.add((JSON.parse(upgraded.stdout) as { new: { pid: number } }).new.pid);
    assert.equal(await sessions(), 1, 'the new generation counts the session');
    const bound = await request(ports.http, { host: 'shop.test', headers: { cookie } });
    assert.equal(bound.body, 'a1', 'the bound user stays on its member');
  });

  test('a new generation that does not serve in time is stopped, and the old one serves on', async () => {
    // Given to node by the first generation, and so to the next (same node options): it hangs the next one.
    const hang = join(dir, 'hang.mjs');
    await writeFile(
      hang,
      'if (process.env.DAYSHIFT_PREVIOUS_GENERATION) await new Promise(() => setInterval(() => {}, 1000));\n',
    );
    const first = await start(['--import', hang]);
    const failed = await runCli(['upgrade', '--config', config, '--timeout', '3s'], { timeoutMs: 90_000 });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /the new generation \(pid \d+\) did not serve within 3\.0s; this one serves on/);
    const child = Number(/the new generation \(pid (\d+)\)/.exec(failed.stderr)![1]);
    assert.ok(!alive(child), 'the generation that hung is gone');
    assert.equal(first.child.exitCode, null);
    assert.equal((await request(ports.http, { host: 'shop.test' })).status, 200, 'the old generation serves on');
  });

  test('is refused under systemd, whose service would stop with the old generation', async () => {
    await writeConfig();
    // A shell named systemd (a link) stands in for the service manager as the parent, with the
    // INVOCATION_ID systemd sets for a service.
    const manager = join(dir, 'systemd');
    await symlink('/bin/sh', manager);
    const pidFile = join(dir, 'dayshift.pid');
    const child = spawn(
      manager,
      ['-c', '"$@" & echo $! > "$PID_FILE"; wait', 'sh', process.execPath, CLI, 'start', '--config', config],
      {
        env: { ...process.env, INVOCATION_ID: '0123456789abcdef0123456789abcdef', PID_FILE: pidFile },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.add(child);
    pids.add(child.pid!);
    await waitFor(
      async () => (await request(ports.http, { host: 'shop.test' }).catch(() => undefined))?.status === 200,
      20_000,
      'dayshift to serve',
    );
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    pids.add(pid);
    const refused = await runCli(['upgrade', '--config', config]);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /runs as a systemd service.*systemctl restart/);
    assert.ok(alive(pid), 'it serves on');
  });
});

/** The PID of the generation that replaced `pid`, from the log line the old one writes. */
/** The child processes of `pid` (a main's workers), from /proc. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function waitForNewGeneration(output: () => string, pid: number): Promise<number> {
  let found: number | undefined;
  await waitFor(
    () => {
      for (const line of output().split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { old?: { pid: number }; new?: { pid: number }; msg: string };
        if (entry.msg.startsWith('upgraded:') && entry.old?.pid === pid) found = entry.new?.pid;
      }
      return found !== undefined;
    },
    60_000,
    `the generation after pid ${pid}`,
  );
  return found!;
}

describe('dayshift db front upgrade (SIGUSR2)', () => {
  let dir: string;
  const pids = new Set<number>();
  after(async () => {
    for (const pid of pids) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      await waitFor(() => !alive(pid), 10_000, `pid ${pid} to go`);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('hands the writer socket to a new front; open connections finish on the old one', async (t) => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-upgrade-front-'));
    // The front splices bytes to the primary in the writer state: an echo server stands in for it.
    const primary = createServer((socket) => socket.pipe(socket));
    primary.listen(0, '127.0.0.1');
    await once(primary, 'listening');
    t.after(() => primary.close());
    const primaryPort = (primary.address() as AddressInfo).port;
    const writer = await freePort();
    const stateDir = join(dir, 'state');
    await mkdir(stateDir, { recursive: true });
    await writeFile(
      join(stateDir, 'db-writer.json'),
      JSON.stringify({ primary: 'a', host: '127.0.0.1', port: primaryPort, at: new Date().toISOString() }),
    );
    const config = join(dir, 'db.yaml');
    await writeFile(
      config,
      stringify({
        state_dir: stateDir,
        database: {
          servers: [
            { name: 'a', host: '127.0.0.1', port: primaryPort, user: 'u', password: 'p' },
            { name: 'b', host: '127.0.0.1', port: 1, user: 'u', password: 'p' },
          ],
          replication: { user: 'r', password: 'p' },
          writer: { listen: `127.0.0.1:${writer}` },
        },
      }),
    );
    const first = spawn(process.execPath, [CLI, 'db', 'front', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pids.add(first.pid!);
    let output = '';
    first.stdout.on('data', (c: Buffer) => (output += c));
    first.stderr.on('data', (c: Buffer) => (output += c));
    const firstExit = once(first, 'exit');
    await waitFor(() => output.includes('writer endpoint listening'), 20_000, 'the front to listen');

    const echo = async (socket: Socket, text: string) => {
      socket.write(text);
      const [data] = (await once(socket, 'data')) as [Buffer];
      return data.toString();
    };
    const open = connect(writer, '127.0.0.1');
    await once(open, 'connect');
    assert.equal(await echo(open, 'before'), 'before');

    process.kill(first.pid!, 'SIGUSR2');
    await waitFor(() => /upgraded: .*\(pid \d+\); this one/.test(output), 30_000, `the upgrade: ${output}`);
    const next = Number(/→ \S+ \(pid (\d+)\)/.exec(output)![1]);
    pids.add(next);
    const fresh = connect(writer, '127.0.0.1');
    await once(fresh, 'connect');
    assert.equal(await echo(fresh, 'new'), 'new', 'a new connection is served');
    fresh.destroy();
    assert.equal(await echo(open, 'during'), 'during', 'the open connection goes on through the old front');
    assert.equal(first.exitCode, null, 'the old front waits for its connections');
    open.end();
    const [code] = (await firstExit) as [number];
    assert.equal(code, 0, output);
    assert.ok(alive(next), 'the new front serves on');
    process.kill(next, 'SIGTERM');
    await waitFor(() => !alive(next), 10_000, 'the new front to stop');
  });
});
