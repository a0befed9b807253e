// Two Dayshift instances sharing one real etcd: a change made through one applies on the other, and a
// drain waits for the sessions and requests of both.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { DrainProgress } from '../../src/control/plane.js';
import type { StatusReport } from '../../src/observe/status-report.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

const etcd = etcdBinary();

describe('several instances through etcd', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let members: TestMember[] = [];
  let one: TestDayshift;
  let two: TestDayshift;

  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
    members = await Promise.all(
      ['a1', 'b1'].map((route) =>
        startMember(route, (req: http.IncomingMessage, res: http.ServerResponse) => {
          const slow = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('slow') ?? 0);
          req.resume();
          setTimeout(() => {
            res.writeHead(
              200,
              /JSESSIONID=/.test(req.headers.cookie ?? '') ? {} : { 'set-cookie': `JSESSIONID=S.${route}; Path=/` },
            );
            res.end(route);
          }, slow);
        }),
      ),
    );
    const config = {
      store: {
        type: 'etcd',
        endpoints: cluster.endpoints,
        prefix: `/dayshift/multi-${process.pid}/`,
        lease_ttl: '2s',
        request_timeout: '500ms',
        dial_timeout: '1s',
      },
      clusters: {
        'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }] },
        'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
      },
      health: { enabled: false },
      drain: { session_idle: '1s' },
      sites: {
        public: {
          hosts: ['example.com'],
          routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'route', cookie: 'JSESSIONID' } }],
        },
      },
    };
    one = await startTestDayshift(config);
    two = await startTestDayshift(config);
  });
  after(async () => {
    await one?.stop();
    await two?.stop();
    await Promise.all(members.map((m) => m.close()));
    await cluster?.stop();
  });

  test('a change acknowledged by one instance is applied by the other within a bounded time', async () => {
    assert.equal((await one.api('POST', '/api/clusters/prod-a/traffic', { state: 'out' })).status, 200);
    const started = performance.now();
    await waitFor(
      async () => (await two.api<StatusReport>('GET', '/api/status')).body.clusters[0]!.traffic === 'out',
      5000,
      'instance two to see prod-a out',
    );
    const ms = performance.now() - started;
    for (let i = 0; i < 5; i++)
      assert.equal((await request(two.port)).body, 'b1', 'instance two routes by the shared state');
    console.log(`# propagation one → two: ${ms.toFixed(1)} ms`);
    assert.equal((await two.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' })).status, 200);
    await waitFor(
      async () => (await one.api<StatusReport>('GET', '/api/status')).body.clusters[0]!.traffic === 'live',
      5000,
      'instance one to see prod-a live',
    );
  });

  test('a drain started on one instance waits for requests in flight on the other', async () => {
    let cookie = '';
    while (!cookie.endsWith('.a1'))
      cookie = String((await request(two.port)).headers['set-cookie'] ?? '').split(';')[0]!;
    const inFlight = request(two.port, { path: '/?slow=3000', headers: { cookie } });
    await waitFor(
      () => members[0]!.received.some((r) => r.url === '/?slow=3000'),
      5000,
      'the slow request to reach a1',
    );
    assert.equal((await one.api('POST', '/api/clusters/prod-a/traffic', { state: 'draining' })).status, 200);
    // Instance two publishes its figures a few times a second; one must see its request in flight.
    await waitFor(
      async () => (await one.api<DrainProgress>('GET', '/api/drain/prod-a')).body.inFlight === 1,
      10_000,
      "instance one to count two's request in flight",
    );
    const progress = (await one.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
    assert.equal(progress.drained, false);
    assert.equal((await inFlight).status, 200);
    const done = await one.api<DrainProgress>('GET', '/api/drain/prod-a?wait=1&timeout=20s');
    assert.equal(done.body.drained, true);
    assert.equal(done.body.reason, 'idle');
    await one.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' });
  });

  test('etcd away: proxies keep serving the last state, changes fail clearly, and instances resynchronise when it returns', async () => {
    const [name] = cluster.memberNames;
    await cluster.kill(name!);
    for (let i = 0; i < 5; i++) assert.equal((await request(one.port)).status, 200, 'still serving');
    const refused = await one.api<{ error: string }>('POST', '/api/clusters/prod-b/traffic', { state: 'draining' });
    assert.equal(refused.status, 503);
    assert.match(refused.body.error, /^the change was not made: .*etcd/i);
    assert.equal(
      (await one.api<StatusReport>('GET', '/api/status')).body.clusters[1]!.traffic,
      'live',
      'nothing applied',
    );

    await cluster.restart(name!);
    // A change made once etcd is back reaches the other instance through its re-established watch.
    await waitFor(
      async () => (await one.api('POST', '/api/clusters/prod-b/traffic', { state: 'draining' })).status === 200,
      20_000,
      'etcd to accept changes again',
    );
    await waitFor(
      async () => (await two.api<StatusReport>('GET', '/api/status')).body.clusters[1]!.traffic === 'draining',
      20_000,
      'instance two to resynchronise',
    );
    assert.equal((await one.api('POST', '/api/clusters/prod-b/traffic', { state: 'live' })).status, 200);
  });
});
