// The release plan's shadow step on a real Dayshift in front of loopback members, under live load: it
// passes when the deployed cluster answers as the live one does, and fails the release (traffic staying
// on the old cluster) on a 5xx increase or a slow p99; the thresholds themselves are table-tested.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { judgeShadow, type ShadowReport, type SideFigures } from '../../src/control/shadow.js';
import { buildSteps, clusterPlan } from '../../src/release/plan.js';
import type { Release } from '../../src/release/types.js';
import { runCli } from '../support/cli.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { startMember, type TestMember } from '../support/members.js';
import { request } from '../support/proxy.js';
import { allUp, releaseIn } from './harness.js';

const HOST = 'shop.example.test';

describe('the shadow step gates approval on the comparison', () => {
  let live: TestMember;
  let released: TestMember;
  /** How the deployed cluster answers everything but /health. */
  let mode: 'ok' | 'error' | 'slow' = 'ok';
  let ds: TestDayshift;

  const answer = (status: number, delayMs: number) => (res: http.ServerResponse) =>
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    }, delayMs);

  before(async () => {
    live = await startMember('b1', (req, res) => {
      req.resume();
      answer(200, 0)(res);
    });
    released = await startMember('a1', (req, res) => {
      req.resume();
      if (req.url === '/health') return answer(200, 0)(res);
      if (mode === 'error') return answer(500, 0)(res);
      answer(200, mode === 'slow' ? 1000 : 0)(res);
    });
    ds = await startTestDayshift({
      clusters: {
        'prod-a': { members: [{ url: released.url, route: 'a1' }] },
        'prod-b': { members: [{ url: live.url, route: 'b1' }] },
      },
      health: { path: '/health', interval: '100ms', timeout: '1s', rise: 1, fall: 1 },
      sites: { public: { hosts: [HOST], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
      release: {
        order: ['prod-a'],
        drain: { session_idle: '100ms', deadline: '5s' },
        health: { timeout: '10s', stable: '200ms' },
        approval: 'auto',
        // min_p99 well above what a fast member's p99 reaches with a CPU hog beside the test, well below slow's.
        shadow: { percent: 100, for: '1500ms', min_samples: 10, min_p99: '400ms' },
      },
    });
    await allUp(ds.dayshift);
  });
  after(async () => {
    await ds?.stop();
    await Promise.all([live?.close(), released?.close()]);
  });

  /** Runs a release to its end under steady load (bounded in count and time); returns it. */
  async function release(version: string): Promise<Release> {
    let stop = false;
    const load = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        await request(ds.port, { host: HOST, path: `/page?i=${i}` });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      await ds.dayshift.conductor.start({ who: 'test', from: 'local' }, version);
      return await releaseIn(ds.dayshift, ['succeeded', 'failed'], 60_000);
    } finally {
      stop = true;
      await load;
    }
  }

  it('passes when the shadow answers as live does, and the release goes on', async () => {
    mode = 'ok';
    const r = await release('2.0');
    const step = r.steps.find((s) => s.id === 'prod-a:shadow')!;
    assert.equal(r.state, 'succeeded', r.reason);
    assert.equal(step.state, 'succeeded');
    assert.match(step.detail!, /^\d+ request\(s\) compared .*5xx live 0%, shadow 0%.*within the thresholds$/);
    assert.ok(r.shadow && r.shadow.shadow.requests >= 10, 'the comparison is in the release');
    assert.equal(r.shadow.cluster, 'prod-a');
    assert.equal(r.shadow.active, false, 'the step stopped its shadow');
    const order = r.steps.map((s) => s.id);
    assert.ok(order.indexOf('prod-a:health') < order.indexOf('prod-a:shadow'), 'after the health gate');
    assert.equal(order.indexOf('prod-a:shadow') + 1, order.indexOf('prod-a:approval'), 'right before approval');
    assert.equal(ds.dayshift.plane.state.clusters['prod-a']!.traffic, 'live');
  });

  it('fails on a 5xx increase: the release stops before approval with prod-a out', async () => {
    mode = 'error';
    const r = await release('2.1-broken');
    assert.equal(r.state, 'failed');
    const step = r.steps[r.current]!;
    assert.equal(step.id, 'prod-a:shadow');
    assert.match(step.detail!, /shadow 5xx rate 100% is above live's 0% \+ 0\.5% \(max_5xx_increase\)/);
    assert.deepEqual(step.output?.slice(1, 2), ['5xx live 0%, shadow 100%']);
    assert.equal(ds.dayshift.plane.state.clusters['prod-a']!.traffic, 'out', 'the public stays on prod-b');
    assert.equal(ds.dayshift.plane.shadowReport()?.active, false, 'no copies after the step');
    const shown = await runCli(['release', 'status', '--admin', ds.adminUrl, '--token', ds.token]);
    assert.match(
      shown.stdout,
      /shadow 100% → prod-a: live \d+ answers, 5xx 0%, p99 \S+ · shadow \d+ answers, 5xx 100%/,
    );
    assert.match(shown.stdout, /public \/: 2xx \d+ → 0, 5xx 0 → \d+/);
    await ds.dayshift.conductor.abort({ who: 'test', from: 'local' });
    await releaseIn(ds.dayshift, ['aborted']);
  });

  it('fails on a p99 above max_p99_ratio × live', async () => {
    mode = 'slow';
    const r = await release('2.2-slow');
    assert.equal(r.state, 'failed');
    assert.equal(r.steps[r.current]!.id, 'prod-a:shadow');
    assert.match(r.steps[r.current]!.detail!, /shadow p99 \d+ms is [\d.]+× live's \d+ms \(max_p99_ratio 1\.2\)/);
    await ds.dayshift.conductor.abort({ who: 'test', from: 'local' });
    await releaseIn(ds.dayshift, ['aborted']);
  });
});

describe('shadow thresholds', () => {
  const side = (requests: number, fivexx: number, p99Ms?: number): SideFigures => ({
    requests,
    classes: { '1xx': 0, '2xx': requests - fivexx, '3xx': 0, '4xx': 0, '5xx': fivexx, failed: 0 },
    rate5xx: requests > 0 ? fivexx / requests : 0,
    ...(p99Ms !== undefined ? { p99Ms } : {}),
  });
  const report = (live: SideFigures, shadow: SideFigures) => ({ live, shadow }) as ShadowReport;
  const t = { min_samples: 100, max_5xx_increase: 0.005, max_p99_ratio: 1.2, min_p99: 100 };
  const cases: [string, ShadowReport, RegExp | undefined][] = [
    ['passes the same answers', report(side(1000, 0, 50), side(1000, 0, 50)), undefined],
    [
      'fails too few samples',
      report(side(99, 0), side(99, 0)),
      /only 99 request\(s\) compared, fewer than min_samples 100/,
    ],
    ["passes live's 5xx rate plus exactly the increase allowed", report(side(1000, 10), side(1000, 15)), undefined],
    ['fails past it', report(side(1000, 10), side(1000, 16)), /shadow 5xx rate 1\.6% is above live's 1% \+ 0\.5%/],
    ['passes a p99 within the ratio', report(side(1000, 0, 200), side(1000, 0, 240)), undefined],
    [
      'fails a p99 past the ratio',
      report(side(1000, 0, 200), side(1000, 0, 250)),
      /shadow p99 250ms is 1\.25× live's 200ms/,
    ],
    ['passes any ratio under min_p99', report(side(1000, 0, 10), side(1000, 0, 90)), undefined],
  ];
  for (const [name, r, expected] of cases)
    it(name, () => {
      const verdict = judgeShadow(r, t);
      if (expected === undefined) assert.equal(verdict, undefined);
      else assert.match(verdict ?? '', expected);
    });
});

describe('the shadow step in the plan', () => {
  const config = (release: Record<string, unknown>) =>
    parseConfig(
      JSON.stringify({
        listen: { http: '127.0.0.1:8080' },
        clusters: {
          'prod-a': { members: [{ url: 'http://127.0.0.1:9001' }] },
          'prod-b': { members: [{ url: 'http://127.0.0.1:9002' }] },
        },
        sites: { public: { hosts: ['example.com'], routes: [{ clusters: ['prod-a', 'prod-b'] }] } },
        release,
      }),
    ).config;

  it('comes between QA and approval, with per-cluster overrides, and none without `shadow`', () => {
    const c = config({
      qa: [{ path: '/health' }],
      shadow: { percent: 5, for: '10m', max_5xx_increase: '1%' },
      clusters: { 'prod-b': { shadow: { percent: 50, methods: ['get'] } } },
    });
    const ids = buildSteps(c).map((s) => s.id);
    assert.deepEqual(ids.slice(ids.indexOf('prod-a:qa'), ids.indexOf('prod-a:approval') + 1), [
      'prod-a:qa',
      'prod-a:shadow',
      'prod-a:approval',
    ]);
    assert.deepEqual(clusterPlan(c, 'prod-a').shadow, {
      percent: 5,
      for: 600_000,
      min_samples: 100,
      max_5xx_increase: 0.01,
      max_p99_ratio: 1.2,
      min_p99: 100,
    });
    assert.deepEqual(clusterPlan(c, 'prod-b').shadow?.methods, ['GET']);
    assert.match(
      buildSteps(c).find((s) => s.id === 'prod-a:shadow')!.title,
      /^shadow prod-a: copy 5% of GET, HEAD for 10m00s; 5xx ≤ live \+ 1 points, p99 ≤ 1\.2× live, ≥ 100 compared$/,
    );
    assert.equal(buildSteps(config({})).filter((s) => s.kind === 'shadow').length, 0);
    assert.throws(() => config({ shadow: { max_5xx_increase: '150%' } }), /expected a share such as 0\.5% or 0\.005/);
  });
});
