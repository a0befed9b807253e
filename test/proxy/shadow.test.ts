// Shadow traffic on a real Dayshift in front of loopback members: the share of requests copied, what a
// copy carries, that a slow or dead shadow member neither delays nor changes live answers, drops when the
// queue is full, the comparison of a shadow that answers 500s (API, CLI, status, /metrics), and stopping.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, afterEach, before, describe, test } from 'node:test';
import type { ShadowReport } from '../../src/control/shadow.js';
import type { StatusReport } from '../../src/observe/status-report.js';
import { runCli } from '../support/cli.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { startMember, type TestMember } from '../support/members.js';
import { waitFor } from '../support/process.js';
import { request } from '../support/proxy.js';

const HOST = 'www.example.test';

/** Answers 200 with its name; the shadow tests' live member. */
function named(name: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    const body = `live ${name} ${req.method} ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** A shadow member whose answers the test sets: 200, 500, or never (held until released). */
class Shadow {
  mode: 'ok' | 'error' | 'hang' = 'ok';
  private held: http.ServerResponse[] = [];
  member!: TestMember;
  async start(): Promise<void> {
    this.member = await startMember('shadow', (req, res) => {
      req.resume();
      if (this.mode === 'hang') return void this.held.push(res);
      const status = this.mode === 'error' ? 500 : 200;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': 6 });
      res.end('shadow');
    });
  }
  release(): void {
    for (const res of this.held.splice(0)) res.destroy();
  }
  get copies() {
    return this.member.received.filter((r) => r.url !== '/health');
  }
}

describe('shadow traffic', () => {
  let live: TestMember;
  const shadow = new Shadow();
  let ds: TestDayshift;
  const cli = (...args: string[]) => runCli([...args, '--admin', ds.adminUrl, '--token', ds.token]);
  const get = (path: string, method = 'GET') => request(ds.port, { host: HOST, path, method });
  const report = async () => (await ds.api<ShadowReport>('GET', '/api/shadow')).body;
  const start = (body: Record<string, unknown>) => ds.api<ShadowReport>('POST', '/api/shadow', body);
  /** Waits until every copy sent has been compared (none in flight, none queued). */
  const settled = () =>
    waitFor('the copies to be compared', async () => {
      const r = await report();
      return r.copies.inFlight === 0 && r.copies.queued === 0 && r.copies.compared === r.copies.sent ? r : undefined;
    });

  before(async () => {
    live = await startMember('live', named('b1'));
    await shadow.start();
    ds = await startTestDayshift({
      clusters: {
        'prod-a': { members: [{ url: shadow.member.url, route: 'a1' }], traffic: 'out' },
        'prod-b': { members: [{ url: live.url, route: 'b1' }] },
      },
      health: { enabled: false },
      shadow: { concurrency: 2, queue: 3, timeout: '20s' },
      sites: {
        public: { hosts: [HOST], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] },
        internal: { hosts: ['qa.example.test'], routes: [{ path: '/', clusters: ['prod-b'] }] },
      },
    });
  });
  afterEach(async () => {
    shadow.release();
    shadow.mode = 'ok';
    await ds.api('DELETE', '/api/shadow');
    await waitFor('copies of the last test to end', async () => {
      const r = (await ds.api<ShadowReport>('GET', '/api/shadow')).body;
      return typeof r !== 'object' || r.copies.inFlight === 0 ? true : undefined;
    });
    shadow.member.received.length = 0;
  });
  after(async () => {
    await ds?.stop();
    await Promise.all([live?.close(), shadow.member?.close()]);
  });

  test('copies about the share asked for, of GET and HEAD only, marked and without a body', async () => {
    assert.equal((await start({ cluster: 'prod-a', percent: 20, for: '5m' })).status, 200);
    const n = 400;
    for (let i = 0; i < n; i++) {
      const reply = await get(`/page/${i}?q=${i}`);
      assert.equal(reply.body, `live b1 GET /page/${i}?q=${i}`);
      // One at a time: the shadow's slots (concurrency 2, queue 3) are never full here.
      await waitFor('the copy to end', async () => ((await report()).copies.inFlight === 0 ? true : undefined));
    }
    // Not copied: a request with a body (its body streams to the live member once), a method not listed.
    for (let i = 0; i < 20; i++) {
      const posted = await request(ds.port, { host: HOST, path: '/form', method: 'POST', body: 'a=1' });
      assert.equal(posted.status, 200);
      assert.equal((await get('/gone', 'DELETE')).status, 200);
    }
    const r = await settled();
    const copies = shadow.copies;
    // Binomial(400, 0.2): mean 80, sd 8; 50..110 is more than 3.5 sd either side.
    assert.ok(copies.length >= 50 && copies.length <= 110, `${copies.length} copies of ${n} requests at 20%`);
    assert.equal(r.copies.sent, copies.length);
    assert.equal(r.copies.dropped, 0);
    assert.equal(r.shadow.requests, copies.length, 'every copy compared');
    for (const c of copies) {
      assert.equal(c.method, 'GET', 'no POST nor DELETE is copied');
      assert.match(c.url, /^\/page\/(\d+)\?q=\1$/, 'the path and query as the live member got them');
      assert.equal(c.headers['dayshift-shadow'], '1');
      assert.equal(c.bodyBytes, 0);
      assert.ok(c.headers['x-request-id'], 'the request id of the live request, for logs on both sides');
    }
    // HEAD is copied too, and a copy is only of requests on routes over the shadow cluster.
    await start({ cluster: 'prod-a', percent: 100 });
    assert.equal((await get('/h', 'HEAD')).status, 200);
    assert.equal((await request(ds.port, { host: 'qa.example.test', path: '/qa' })).status, 200);
    await settled();
    assert.deepEqual(
      shadow.copies.slice(-1).map((c) => `${c.method} ${c.url}`),
      ['HEAD /h'],
    );
  });

  test('a shadow member that never answers neither delays nor changes live answers; a full queue drops', async () => {
    // Without a shadow: the live latencies to compare with.
    const timed = async (i: number) => {
      const t0 = performance.now();
      const reply = await get(`/t/${i}`);
      return { reply, ms: performance.now() - t0 };
    };
    const baseline: number[] = [];
    for (let i = 0; i < 30; i++) baseline.push((await timed(i)).ms);

    shadow.mode = 'hang';
    await start({ cluster: 'prod-a', percent: 100 });
    const withShadow: number[] = [];
    for (let i = 0; i < 30; i++) {
      const { reply, ms } = await timed(i);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, `live b1 GET /t/${i}`, 'the live answer, exactly');
      assert.equal(reply.headers['dayshift-shadow'], undefined);
      withShadow.push(ms);
    }
    const r = await report();
    // Concurrency 2 held by the hanging member, 3 queued behind them: the other 25 were dropped.
    assert.equal(r.copies.inFlight, 2);
    assert.equal(r.copies.queued, 3);
    assert.equal(r.copies.sent, 2);
    assert.equal(r.copies.dropped, 25);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Loose: the shadow member holds every copy for good, so any wait on it would be seconds.
    assert.ok(
      Math.max(...withShadow) < 5000,
      `slowest live answer with a hanging shadow: ${Math.max(...withShadow)}ms`,
    );
    assert.ok(
      median(withShadow) < median(baseline) + 200,
      `median live latency ${median(withShadow)}ms with the shadow, ${median(baseline)}ms without`,
    );

    // A dead shadow member (connection refused): the same live answers, the copies count as failed.
    shadow.mode = 'ok';
    shadow.release();
    await settled();
    await ds.api('DELETE', '/api/shadow');
    await shadow.member.close();
    try {
      await start({ cluster: 'prod-a', percent: 100 });
      for (let i = 0; i < 5; i++) assert.equal((await get(`/d/${i}`)).body, `live b1 GET /d/${i}`);
      const dead = await settled();
      assert.equal(dead.shadow.classes.failed, 5);
      assert.equal(dead.shadow.rate5xx, 1);
      assert.equal(dead.live.classes['2xx'], 5);
    } finally {
      await shadow.member.server.listen(shadow.member.port, '127.0.0.1');
      await waitFor('the shadow member to listen again', async () =>
        shadow.member.server.listening ? true : undefined,
      );
    }
  });

  test('a shadow answering 500s: the comparison in the API, the CLI, status and /metrics', async () => {
    shadow.mode = 'error';
    const started = await cli('shadow', 'prod-a', '--percent', '100', '--for', '10m');
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /copying 100% of GET, HEAD requests to prod-a until /);
    for (let i = 0; i < 40; i++) assert.equal((await get(i % 2 ? '/a' : '/b')).status, 200);
    const r = await settled();
    assert.equal(r.cluster, 'prod-a');
    assert.equal(r.active, true);
    assert.deepEqual(r.live.classes, { '1xx': 0, '2xx': 40, '3xx': 0, '4xx': 0, '5xx': 0, failed: 0 });
    assert.deepEqual(r.shadow.classes, { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 40, failed: 0 });
    assert.equal(r.live.rate5xx, 0);
    assert.equal(r.shadow.rate5xx, 1);
    assert.ok(r.live.p50Ms !== undefined && r.live.p90Ms !== undefined && r.live.p99Ms !== undefined);
    assert.ok(r.live.p50Ms <= r.live.p90Ms && r.live.p90Ms <= r.live.p99Ms, 'percentiles in order');
    assert.deepEqual(
      r.routes.map((x) => [x.site, x.route, x.shadow.requests, x.differences]),
      [['public', '/', 40, ['2xx 40 → 0', '5xx 0 → 40']]],
    );

    const shown = await cli('shadow', 'prod-a');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /Shadow 100% of GET, HEAD → prod-a {2}copying/);
    assert.match(shown.stdout, /^live\s+40\s+40\s+0\s+0\s+0\s+0\s+0%/m);
    assert.match(shown.stdout, /^shadow\s+40\s+0\s+0\s+0\s+40\s+0\s+100%/m);
    assert.match(shown.stdout, /public\s+\/\s+40\s+.*2xx 40 → 0, 5xx 0 → 40/);
    const json = await cli('shadow', 'prod-a', '--json');
    assert.equal(json.code, 0);
    assert.equal((JSON.parse(json.stdout) as ShadowReport).shadow.classes['5xx'], 40);
    const other = await cli('shadow', 'prod-b');
    assert.equal(other.code, 2, 'asking for a shadow that is not the one in force is a usage error');
    assert.match(other.stderr, /no shadow to prod-b: the shadow in force copies to prod-a/);

    const status = await ds.api<StatusReport>('GET', '/api/status');
    assert.equal(status.body.shadow?.shadow.classes['5xx'], 40);
    const statusText = await cli('status');
    assert.match(statusText.stdout, /Shadow 100% of GET, HEAD → prod-a/);

    const metrics = await fetch(`${ds.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ds.token}` } });
    const text = await metrics.text();
    assert.match(text, /^dayshift_shadow_responses_total\{cluster="prod-a",side="shadow",status_class="5xx"\} 40$/m);
    assert.match(text, /^dayshift_shadow_responses_total\{cluster="prod-a",side="live",status_class="2xx"\} 40$/m);
    assert.match(text, /^dayshift_shadow_copies_total\{cluster="prod-a",result="compared"\} 40$/m);
    assert.match(
      text,
      /^dayshift_shadow_latency_seconds\{cluster="prod-a",side="shadow",quantile="0\.99"\} [\d.e-]+$/m,
    );
    assert.match(
      text,
      /^dayshift_shadow_route_responses_total\{cluster="prod-a",site="public",route="\/",side="shadow",status_class="5xx"\} 40$/m,
    );

    const stopped = await cli('shadow', 'prod-a', '--stop', '--json');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((JSON.parse(stopped.stdout) as { stopped: boolean }).stopped, true);
    await get('/after-stop');
    const after = await report();
    assert.equal(after.active, false);
    assert.equal(after.copies.sent, 40, 'no copy after the stop');
    const again = await cli('shadow', '--stop');
    assert.equal(again.code, 0);
    assert.match(again.stdout, /no shadow in force: nothing to stop/);
  });

  test('refuses a live cluster, an unknown one and bad flags, with the exit codes of output.ts', async () => {
    const liveCluster = await cli('shadow', 'prod-b', '--percent', '10');
    assert.equal(liveCluster.code, 3, liveCluster.stderr);
    assert.match(liveCluster.stderr, /prod-b is live: copies go to a cluster out of traffic/);
    const unknown = await cli('shadow', 'prod-z', '--percent', '10');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown cluster "prod-z"/);
    const percent = await cli('shadow', 'prod-a', '--percent', '0');
    assert.equal(percent.code, 2);
    assert.match(percent.stderr, /bad --percent "0"/);
    const help = await runCli(['shadow', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /a copy is still a\s+request/);
  });
});
