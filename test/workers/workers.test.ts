// workers: 2 with real worker processes: they share the listener, a change reaches all of them before
// the command returns, health is checked once, figures are merged, and a worker killed with kill -9 is
// replaced while the other keeps serving — no connection refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { stringify } from 'yaml';
import { freePort } from '../../src/ports.js';
import { after, before, describe, test } from 'node:test';
import type { DrainProgress } from '../../src/control/plane.js';
import type { WorkerPool } from '../../src/workers/pool.js';
import { startMember, echoName, routes, type TestMember } from '../support/members.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { waitFor } from '../support/process.js';
import { selfSigned } from '../support/certs.js';
import { requirePeer } from '../support/peers.js';
import { CLI } from '../support/cli.js';

interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One GET on a new connection (agent: false): which worker accepts it is the kernel's choice. */
function get(port: number, path = '/', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { host: 'example.com', ...headers } });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Runs `fn` while every worker but `index` (0-based) is stopped (SIGSTOP), so that this one serves all. */
async function onlyWorker<T>(pool: WorkerPool, index: number, fn: () => Promise<T>): Promise<T> {
  const others = pool.pids().filter((_, i) => i !== index);
  for (const pid of others) process.kill(pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    for (const pid of others) process.kill(pid, 'SIGCONT');
  }
}

describe('workers: 2', () => {
  let a: TestMember;
  let b: TestMember;
  let checks = 0;
  let aHealthy = true;
  /** Answers of /slow on member b, held until the test lets them go. */
  const held: (() => void)[] = [];
  let ds: TestDayshift;
  const pool = () => ds.dayshift.proxy as WorkerPool;

  before(async () => {
    const health: Parameters<typeof routes>[0] = {
      '/health': (req, res) => {
        checks++;
        req.resume();
        res.writeHead(aHealthy ? 200 : 503).end();
      },
    };
    a = await startMember('a', routes(health, echoName));
    b = await startMember(
      'b',
      routes(
        {
          '/slow': (req, res) => {
            req.resume();
            held.push(() => res.end('b slow'));
          },
        },
        echoName,
      ),
    );
    ds = await startTestDayshift({
      workers: 2,
      // Relative to the config file: the test's own directory. Every worker appends to it.
      access_log: { target: 'access.log', format: 'json' },
      clusters: {
        'prod-a': { members: [{ url: a.url }], health: { path: '/health', interval: '100ms' } },
        'prod-b': { members: [{ url: b.url }], health: { enabled: false } },
      },
      sites: {
        public: {
          hosts: ['example.com'],
          routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'cookie', cookie: 'ds' } }],
        },
      },
    });
  });

  after(async () => {
    await ds?.stop();
    await Promise.all([a?.close(), b?.close()]);
  });

  test('two worker processes serve the one listener, each on its own', async () => {
    const pids = pool().pids();
    assert.equal(pids.length, 2);
    assert.notEqual(pids[0], pids[1]);
    assert.ok(!pids.includes(process.pid), 'the main process does not serve');
    for (const index of [0, 1]) {
      const answers = await onlyWorker(pool(), index, () =>
        Promise.all(Array.from({ length: 10 }, () => get(ds.port))),
      );
      assert.deepEqual(
        answers.map((r) => r.status),
        Array(10).fill(200),
        `worker ${index + 1} alone`,
      );
    }
  });

  test('"out" reaches every worker before the command returns', async () => {
    for (const [out, live] of [
      ['prod-b', 'a'],
      ['prod-a', 'b'],
      ['prod-b', 'a'],
    ] as const) {
      const other = out === 'prod-a' ? 'prod-b' : 'prod-a';
      assert.equal((await ds.api('POST', `/api/clusters/${other}/traffic`, { state: 'live' })).status, 200);
      assert.equal((await ds.api('POST', `/api/clusters/${out}/traffic`, { state: 'out' })).status, 200);
      // At once, on 100 new connections spread by the kernel over both workers: none reaches the cluster out.
      const answers = await Promise.all(Array.from({ length: 100 }, () => get(ds.port)));
      const members = new Set(answers.map((r) => r.body.split(' ')[0]));
      assert.deepEqual([...members], [live], `after ${out} out`);
    }
    await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'live' });
  });

  test('a command waits for every worker to confirm the change', async () => {
    const [, second] = pool().pids();
    process.kill(second!, 'SIGSTOP');
    let returned = false;
    const command = ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'out' }).finally(() => (returned = true));
    try {
      // Worker 1 has the change; worker 2, stopped, cannot confirm it: the command must still be waiting.
      await waitFor('worker 1 with prod-b out', async () =>
        (await Promise.all(Array.from({ length: 20 }, () => get(ds.port)))).every((r) => r.body.startsWith('a '))
          ? true
          : undefined,
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(returned, false, 'the command returned before worker 2 had the change');
    } finally {
      process.kill(second!, 'SIGCONT');
    }
    assert.equal((await command).status, 200);
    const answers = await onlyWorker(pool(), 1, () => Promise.all(Array.from({ length: 20 }, () => get(ds.port))));
    assert.ok(
      answers.every((r) => r.body.startsWith('a ')),
      'worker 2 serves with prod-b out',
    );
    await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'live' });
  });

  test('health is checked once for all workers, and a member down is down in every worker', async () => {
    // Over a window, checks arrive at the interval's pace: one checker, not one per worker.
    const startedAt = Date.now();
    const before = checks;
    await new Promise((r) => setTimeout(r, 2000));
    const windowMs = Date.now() - startedAt;
    const seen = checks - before;
    assert.ok(
      seen <= windowMs / 100 + 3,
      `${seen} checks in ${windowMs} ms at a 100 ms interval: more than one checker`,
    );
    assert.ok(seen >= 3, `${seen} checks in ${windowMs} ms: the main checks`);

    aHealthy = false;
    await waitFor('prod-a down', async () =>
      pool()
        .stats()
        .members.find((m) => m.key === 'prod-a/1')?.health === 'down'
        ? true
        : undefined,
    );
    for (const index of [0, 1]) {
      const answers = await onlyWorker(pool(), index, () =>
        Promise.all(Array.from({ length: 20 }, () => get(ds.port))),
      );
      assert.deepEqual(new Set(answers.map((r) => r.body.split(' ')[0])), new Set(['b']), `worker ${index + 1}`);
    }
    aHealthy = true;
    await waitFor('prod-a up again', async () =>
      pool()
        .stats()
        .members.find((m) => m.key === 'prod-a/1')?.health === 'up'
        ? true
        : undefined,
    );
  });

  test('a sticky cookie issued by one worker is honoured by the other (shared secret)', async () => {
    const first = await onlyWorker(pool(), 0, () => get(ds.port));
    const cookie = String(first.headers['set-cookie']?.[0]).split(';')[0]!;
    const member = first.body.split(' ')[0];
    const answers = await onlyWorker(pool(), 1, () =>
      Promise.all(Array.from({ length: 20 }, () => get(ds.port, '/', { cookie }))),
    );
    assert.deepEqual(new Set(answers.map((r) => r.body.split(' ')[0])), new Set([member]));
  });

  test('status and /metrics count the requests of every worker', async () => {
    await pool().refreshStats();
    const total = () =>
      pool()
        .stats()
        .members.reduce((n, m) => n + m.responses[1], 0);
    const latencyCount = () =>
      pool()
        .stats()
        .members.reduce((n, m) => n + m.latencyBuckets.reduce((x, y) => x + y, 0), 0);
    const before = { responses: total(), latency: latencyCount() };
    for (const index of [0, 1])
      await onlyWorker(pool(), index, () => Promise.all(Array.from({ length: 15 }, () => get(ds.port))));
    await pool().refreshStats();
    assert.equal(total() - before.responses, 30, 'responses of both workers');
    assert.equal(latencyCount() - before.latency, 30, 'latency histograms merged bucket by bucket');

    const metrics = await (await fetch(`${ds.adminUrl}/metrics`)).text();
    const requests = [
      ...metrics.matchAll(/^dayshift_member_responses_total\{[^}]*status_class="2xx"[^}]*\} (\d+)/gm),
    ].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(requests >= before.responses + 30, `/metrics counts ${requests} 2xx responses:\n${metrics}`);
  });

  test('every worker appends whole lines to the one access log', async () => {
    const file = join(ds.dir, 'access.log');
    const lines = async () => (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    const before = (await lines()).length;
    for (const index of [0, 1])
      await onlyWorker(pool(), index, () =>
        Promise.all(Array.from({ length: 25 }, (_, i) => get(ds.port, `/logged?worker=${index + 1}&i=${i}`))),
      );
    const logged = await waitFor('50 more lines', async () => {
      const now = await lines();
      return now.length >= before + 50 ? now.slice(before) : undefined;
    });
    const paths = logged.map((line) => (JSON.parse(line) as { path: string }).path);
    for (const worker of [1, 2])
      assert.equal(
        paths.filter((p) => p.startsWith(`/logged?worker=${worker}&`)).length,
        25,
        `worker ${worker}'s lines`,
      );
  });

  test('a drain counts the requests in flight and the sessions of every worker', async () => {
    const sessionsBefore = (await ds.api<DrainProgress>('GET', '/api/drain/prod-b')).body.sessions ?? 0;
    const cookie = await onlyWorker(pool(), 1, () =>
      waitFor('a session on prod-b', async () => {
        const answer = await get(ds.port);
        return answer.body.startsWith('b ') ? String(answer.headers['set-cookie']?.[0]).split(';')[0] : undefined;
      }),
    );
    assert.equal((await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'draining' })).status, 200);
    const slow: Promise<Answer>[] = [];
    for (const index of [0, 1])
      await onlyWorker(pool(), index, async () => {
        slow.push(get(ds.port, '/slow', { cookie: cookie! }));
        await waitFor(`worker ${index + 1}'s request at the member`, async () =>
          held.length === index + 1 ? true : undefined,
        );
      });
    const progress = (await ds.api<DrainProgress>('GET', '/api/drain/prod-b')).body;
    assert.equal(progress.inFlight, 2, 'one request in flight in each worker');
    // Asked at once: the main gathers the workers' sessions before it answers.
    assert.equal(progress.sessions, sessionsBefore + 1, 'the session worker 2 issued');
    assert.equal(progress.drained, false);
    for (const release of held.splice(0)) release();
    assert.deepEqual(
      (await Promise.all(slow)).map((r) => r.body),
      ['b slow', 'b slow'],
    );
    await waitFor('nothing in flight', async () =>
      (await ds.api<DrainProgress>('GET', '/api/drain/prod-b')).body.inFlight === 0 ? true : undefined,
    );
    await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'live' });
  });

  test("a drain counts every worker's tunnels, and its deadline closes them in every worker", async () => {
    b.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n');
      socket.on('error', () => undefined);
    });
    assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'out' })).status, 200);
    const tunnels: net.Socket[] = [];
    for (const index of [0, 1])
      tunnels.push(
        await onlyWorker(pool(), index, async () => {
          const socket = net.connect(ds.port, '127.0.0.1');
          socket.on('error', () => undefined);
          socket.write('GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: chat\r\n\r\n');
          const [head] = (await once(socket, 'data')) as [Buffer];
          assert.match(head.toString(), /^HTTP\/1\.1 101/, `worker ${index + 1}'s tunnel`);
          return socket;
        }),
      );
    const closed = tunnels.map((socket) => once(socket, 'close'));
    assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' })).status, 200);
    const drain = await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'draining', deadline: '3s' });
    assert.equal(drain.status, 200);
    const progress = (await ds.api<DrainProgress>('GET', '/api/drain/prod-b')).body;
    assert.equal(progress.tunnels, 2, 'one tunnel in each worker');
    await Promise.all(closed);
    const entry = await waitFor('the closing in the audit log', async () =>
      (await ds.dayshift.audit.tail(20)).find((e) => e.action === 'close tunnels'),
    );
    assert.equal(entry.detail?.tunnels, 2, 'closed in both workers');
    await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'live' });
  });

  test('a worker killed with kill -9 is replaced and audited; no connection is refused meanwhile', async (t) => {
    const [victim, survivor] = pool().pids();
    const load = startLoad(ds.port, 8, 8, 30_000);
    await waitFor('load flowing', async () => (load.counts.ok > 200 ? true : undefined), 20_000);
    const killedAt = performance.now();
    process.kill(victim!, 'SIGKILL');
    const replacement = await waitFor(
      'the replacement worker',
      async () => {
        const pids = pool().pids();
        return pids[0] !== victim ? pids[0] : undefined;
      },
      20_000,
    );
    const audited = await waitFor(
      'the replacement in the audit log',
      async () => (await ds.dayshift.audit.tail(20)).find((e) => e.action === 'worker replaced'),
      20_000,
    );
    // Serving again: the replacement, alone, answers.
    await waitFor('the replacement serving', async () =>
      (await onlyWorker(pool(), 0, () => get(ds.port))).status === 200 ? true : undefined,
    );
    const servedMeanwhile = load.counts.doneAt.filter((at) => at > killedAt).length;
    const okBefore = load.counts.ok;
    await waitFor('load flowing after', async () => (load.counts.ok > okBefore + 200 ? true : undefined), 20_000);
    await load.stop();
    const { ok, refused, retried, failed } = load.counts;
    t.diagnostic(`ok ${ok}, refused ${refused}, retried ${retried}, failed ${failed.length} (${failed.join('; ')})`);
    assert.equal(refused, 0, 'connections refused');
    assert.ok(servedMeanwhile > 0, 'the other worker kept serving while the killed one was replaced');
    // Only a request in flight on the killed worker can fail (kill -9 leaves it no chance to answer): at
    // most one per client, since each has one request in flight at a time.
    assert.ok(failed.length <= 16, `failed: ${failed.join('; ')}`);
    assert.deepEqual(audited.detail, { pid: victim, exit: 'SIGKILL', replacement });
    assert.equal(pool().pids()[1], survivor, 'the other worker was left alone');
  });

  test('a change made while a replacement worker starts reaches it', async () => {
    const [victim] = pool().pids();
    process.kill(victim!, 'SIGKILL');
    const replacement = await waitFor('the replacement spawned', async () =>
      pool().pids()[0] !== victim ? pool().pids()[0] : undefined,
    );
    // The replacement is starting: the change is sent to it meanwhile, and confirmed once it serves.
    assert.equal((await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'out' })).status, 200);
    assert.equal(pool().pids()[0], replacement, 'the replacement confirmed the change (not killed for silence)');
    const answers = await onlyWorker(pool(), 0, () => Promise.all(Array.from({ length: 20 }, () => get(ds.port))));
    assert.ok(
      answers.every((r) => r.body.startsWith('a ')),
      'the replacement serves with prod-b out',
    );
    await ds.api('POST', '/api/clusters/prod-b/traffic', { state: 'live' });
  });
});

interface LoadCounts {
  ok: number;
  /** Connections the kernel refused (nothing listening): must never happen. */
  refused: number;
  /** GETs on a reused keep-alive connection reset before any response byte: retried once, as browsers do. */
  retried: number;
  /** Requests that failed otherwise (in flight on the killed worker), with why. */
  failed: string[];
  /** When each response completed (performance.now()). */
  doneAt: number[];
}

/**
 * A bounded load: `keepAlive` clients reusing connections and `fresh` clients opening one per request,
 * each sending GETs one after the other until stop() or `maxMs`.
 */
function startLoad(port: number, keepAlive: number, fresh: number, maxMs: number) {
  const counts: LoadCounts = { ok: 0, refused: 0, retried: 0, failed: [], doneAt: [] };
  const agent = new http.Agent({ keepAlive: true, maxSockets: keepAlive });
  let running = true;
  const timer = setTimeout(() => (running = false), maxMs);
  const once = (reuse: boolean): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({
        host: '127.0.0.1',
        port,
        path: '/',
        agent: reuse ? agent : false,
        headers: { host: 'example.com' },
      });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) {
            counts.ok++;
            counts.doneAt.push(performance.now());
          } else counts.failed.push(`status ${res.statusCode}`);
          resolve();
        });
        res.on('error', (err) => {
          counts.failed.push(`response cut: ${err.message}`);
          resolve();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') counts.refused++;
        else if (reuse && req.reusedSocket && !answered && err.code === 'ECONNRESET') {
          counts.retried++;
          return void once(false).then(resolve);
        } else counts.failed.push(`${reuse ? 'keep-alive' : 'new connection'}: ${err.code ?? err.message}`);
        resolve();
      });
    });
  const client = async (reuse: boolean) => {
    while (running) await once(reuse);
  };
  const clients = [
    ...Array.from({ length: keepAlive }, () => client(true)),
    ...Array.from({ length: fresh }, () => client(false)),
  ];
  return {
    counts,
    async stop() {
      running = false;
      clearTimeout(timer);
      await Promise.all(clients);
      agent.destroy();
    },
  };
}

test('a worker that cannot start fails `start` with its reason', async () => {
  await assert.rejects(
    startTestDayshift({
      workers: 2,
      clusters: { web: { members: [{ url: 'http://no-such-member.invalid:8080' }] } },
      sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['web'] }] } },
    }),
    /cannot resolve no-such-member\.invalid/,
  );
});

describe('workers: 2 on an HTTPS listener', () => {
  let member: TestMember;
  let ds: TestDayshift;
  let dir: string;
  const pool = () => ds.dayshift.proxy as WorkerPool;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-workers-tls-'));
    member = await startMember('m');
    ds = await startTestDayshift(
      {
        workers: 2,
        listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'site.test') },
        clusters: { web: { members: [{ url: member.url }] } },
        health: { enabled: false },
        sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['web'] }] } },
      },
      dir,
    );
  });

  after(async () => {
    await ds?.stop();
    await member?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** One GET over TLS, offering `session`; resolves with the answer, whether the session was resumed, and the new one. */
  function tlsGet(port: number, session?: Buffer): Promise<{ status: string; reused: boolean; session: Buffer }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        port,
        host: '127.0.0.1',
        servername: 'site.test',
        rejectUnauthorized: false,
        session,
      });
      let text = '';
      let ticket: Buffer | undefined;
      socket.on('session', (s: Buffer) => (ticket = s));
      socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n'));
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (text += c));
      socket.on('end', () =>
        resolve({ status: text.split('\r\n')[0]!, reused: socket.isSessionReused(), session: ticket ?? session! }),
      );
      socket.on('error', reject);
    });
  }

  test('each worker serves HTTPS, and a session ticket one issued resumes on the other (shared ticket keys)', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const port = pool().addresses().https[0]!.port;
    const first = await onlyWorker(pool(), 0, () => tlsGet(port));
    assert.equal(first.status, 'HTTP/1.1 200 OK');
    const second = await onlyWorker(pool(), 1, () => tlsGet(port, first.session));
    assert.equal(second.status, 'HTTP/1.1 200 OK');
    assert.equal(second.reused, true, 'worker 2 resumed the session worker 1 issued');
  });
});

describe('workers: 2 stopping', () => {
  test('the main tells the workers to finish their requests in flight, then exits; nothing is left running', async () => {
    const held: (() => void)[] = [];
    const member = await startMember('slow', (req, res) => {
      req.resume();
      if (req.url === '/slow') held.push(() => res.end('slow done'));
      else res.end('quick');
    });
    const ds = await startTestDayshift({
      workers: 2,
      clusters: { web: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['web'] }] } },
    });
    const pids = (ds.dayshift.proxy as WorkerPool).pids();
    try {
      const inFlight = [get(ds.port, '/slow'), get(ds.port, '/slow')];
      await waitFor('both requests at the member', async () => (held.length === 2 ? true : undefined));
      const stopped = ds.dayshift.close(20_000);
      // The workers stop accepting (a new connection is refused, not left waiting in a queue nobody
      // reads) but wait for their requests in flight.
      await waitFor('new connections refused', () =>
        get(ds.port).then(
          () => undefined,
          (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? true : undefined),
        ),
      );
      for (const release of held.splice(0)) release();
      assert.deepEqual(
        (await Promise.all(inFlight)).map((r) => r.body),
        ['slow done', 'slow done'],
      );
      await stopped;
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker pid ${pid} exited`);
    } finally {
      for (const release of held) release();
      await member.close();
      await rm(ds.dir, { recursive: true, force: true });
    }
  });
});

describe('workers: 2 under systemd socket activation', () => {
  test('the main holds the inherited socket for its workers, and a replaced worker listens on it again', async (t) => {
    const binary = requirePeer(t, 'systemd-socket-activate', 'systemd');
    if (!binary) return;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-workers-systemd-'));
    const member = await startMember('m1');
    const [port, admin] = await Promise.all([freePort(), freePort()]);
    const config = join(dir, 'dayshift.yaml');
    await writeFile(
      config,
      stringify({
        workers: 2,
        listen: { http: `127.0.0.1:${port}` },
        admin: { listen: `127.0.0.1:${admin}` },
        state_dir: join(dir, 'state'),
        log: { format: 'json' },
        clusters: { web: { members: [{ url: member.url }] } },
        health: { enabled: false },
        sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['web'] }] } },
      }),
    );
    const child = spawn(
      binary,
      ['-l', `127.0.0.1:${port}`, '--fdname=http', process.execPath, CLI, 'start', '--config', config],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    try {
      await waitFor('systemd-socket-activate to listen', async () =>
        output.includes('Listening on')
          ? true
          : child.exitCode === null
            ? undefined
            : Promise.reject(new Error(output)),
      );
      // The first connection starts Dayshift; it waits in the queue meanwhile.
      assert.equal((await get(port)).status, 200, output);
      const serving = await waitFor('the workers serving', async () =>
        output
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { msg: string; workers?: { pid: number }[] })
          .find((line) => line.msg === '2 workers serving'),
      );
      await waitFor('the start logged', async () => (output.includes('"inheritedSockets":1') ? true : undefined));
      const victim = serving.workers![0]!.pid;
      process.kill(victim, 'SIGKILL');
      await waitFor('the replacement', async () => (/replaced by pid \d+/.test(output) ? true : undefined));
      const replacement = Number(/replaced by pid (\d+)/.exec(output)![1]);
      await waitFor('the replacement listening', async () =>
        (await readFile(`/proc/${replacement}/net/tcp`, 'utf8').catch(() => '')) ? true : undefined,
      );
      const answers = await Promise.all(Array.from({ length: 20 }, () => get(port)));
      assert.deepEqual(
        answers.map((r) => r.status),
        Array(20).fill(200),
      );
      // The replacement serves alone on the inherited socket.
      process.kill(serving.workers![1]!.pid, 'SIGSTOP');
      try {
        await waitFor('the replacement serving', async () => ((await get(port)).status === 200 ? true : undefined));
      } finally {
        process.kill(serving.workers![1]!.pid, 'SIGCONT');
      }
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await member.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
