// workers: 2 with real worker processes: they share the listener, a change reaches all of them before
// the command returns, health is checked once, figures are merged, and a worker killed with kill -9 is
// replaced while the other keeps serving — no connection refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { WorkerPool } from '../../src/workers/pool.js';
import { startMember, echoName, routes, type TestMember } from '../support/members.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { waitFor } from '../support/process.js';

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
  let ds: TestDayshift;
  const pool = () => ds.dayshift.proxy as WorkerPool;

  before(async () => {
    const health: Parameters<typeof routes>[0] = {
      '/health': (req, res) => {
        checks++;
        req.resume();
        res.end('ok');
      },
    };
    a = await startMember('a', routes(health, echoName));
    b = await startMember('b', routes({}, echoName));
    ds = await startTestDayshift({
      workers: 2,
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

    a.server.removeAllListeners('request');
    a.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/health') checks++;
      req.resume();
      res.writeHead(req.url === '/health' ? 503 : 200).end('a 0');
    });
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
    a.server.removeAllListeners('request');
    a.server.on(
      'request',
      routes(
        {
          '/health': (req, res) => {
            checks++;
            req.resume();
            res.end('ok');
          },
        },
        echoName,
      ).bind(null),
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
});
