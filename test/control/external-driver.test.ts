// `dayshift start` with `driver: haproxy`: Dayshift runs as the control plane only, and the CLI's drain
// and status work on the HAProxy that serves the traffic.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { STATE_KEY } from '../../src/control/desired-state.js';
import { RuntimeApiClient } from '../../src/drivers/haproxy/runtime-api.js';
import type { StatusReport } from '../../src/observe/status-report.js';
import { startBackend, type Backend } from '../support/backends.js';
import { runCli } from '../support/cli.js';
import { findPeer } from '../support/peers.js';
import { startExportedHaproxy, type RunningLoadBalancer } from '../support/load-balancers.js';
import { request } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

const haproxy = findPeer('haproxy', 'haproxy');

describe('dayshift with the haproxy driver', { skip: haproxy.skip }, () => {
  let backends: Backend[] = [];
  let lb: RunningLoadBalancer;
  let ds: TestDayshift;
  let config: Record<string, unknown>;

  before(async () => {
    backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startBackend));
    lb = await startExportedHaproxy(haproxy.path!, backends);
    const driver = lb.config.driver as { socket: string; backend: string; state_file: string };
    config = {
      driver: {
        type: 'haproxy',
        socket: driver.socket,
        backend: driver.backend,
        match: 'name',
        state_file: driver.state_file,
        timeout: '5s',
        verify_interval: '1h',
      },
      // No listen: with HAProxy serving the traffic, Dayshift needs no proxy listener of its own.
      drain: { session_idle: '1s' },
      clusters: {
        'prod-a': { members: backends.slice(0, 2).map((b) => ({ url: b.url, route: b.name })) },
        'prod-b': { members: backends.slice(2).map((b) => ({ url: b.url, route: b.name })) },
      },
      sites: { public: { hosts: ['example.com'], routes: [{ clusters: ['prod-a', 'prod-b'] }] } },
      release: { qa: [{ path: '/health' }] },
    };
    ds = await startTestDayshift(config);
  });
  after(async () => {
    await ds?.stop();
    await lb?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('no built-in proxy starts; status comes from HAProxy', async () => {
    assert.equal(ds.dayshift.proxy, undefined);
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    assert.equal(body.driver, 'haproxy');
    assert.deepEqual(
      body.clusters.map((c) => c.members.map((m) => m.admin)),
      [
        ['ready', 'ready'],
        ['ready', 'ready'],
      ],
    );
    // HAProxy counts no sessions: none is reported, in the API or the table (whose cluster rows said 0).
    assert.ok(body.clusters.every((c) => c.members.every((m) => m.boundSessions === undefined)));
    const table = (await runCli(['status', '--admin', ds.adminUrl, '--token', ds.token])).stdout;
    assert.match(table, /^prod-a\s+live\s+1\s+.*\s-\s+-\s*$/m, table);
  });

  test("drain --wait and out through the CLI take prod-a out of HAProxy's traffic", async () => {
    const port = Number(new URL(lb.url).port);
    const drain = await runCli([
      'drain',
      'prod-a',
      '--wait',
      '--deadline',
      '20s',
      '--admin',
      ds.adminUrl,
      '--token',
      ds.token,
    ]);
    assert.equal(drain.code, 0, drain.stderr);
    // HAProxy counts no sessions: the wait went by its request count for the idle window (1s), said so,
    // and off a terminal printed its progress on change only, not every tick of the countdown.
    assert.doesNotMatch(drain.stdout + drain.stderr, /session\(s\)/);
    assert.match(
      drain.stdout,
      /prod-a drained: 0 in flight, no new request for [\d.]+s by the load balancer's count \(drained after 1(\.0)?s\)/,
    );
    const progress = drain.stderr.split('\n').filter((l) => l.startsWith('prod-a draining'));
    assert.ok(progress.length <= 2, `progress printed ${progress.length} times:\n${drain.stderr}`);
    assert.equal((await runCli(['out', 'prod-a', '--admin', ds.adminUrl, '--token', ds.token])).code, 0);
    for (let i = 0; i < 10; i++) assert.match((await request(port)).body, /^b[12]$/);
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    assert.deepEqual(
      body.clusters[0]!.members.map((m) => m.admin),
      ['disabled', 'disabled'],
    );
    assert.equal((await runCli(['live', 'prod-a', '--admin', ds.adminUrl, '--token', ds.token])).code, 0);
  });

  test("a change made behind Dayshift's back is repaired, audited and shown by status (API, CLI)", async () => {
    const driver = lb.config.driver as { socket: string };
    assert.equal((await runCli(['out', 'prod-a', '--admin', ds.adminUrl, '--token', ds.token])).code, 0);
    try {
      await new RuntimeApiClient({ socket: driver.socket }, 5000).change('set server public/a1 state ready');
      assert.deepEqual(await ds.dayshift.plane.verifyDriver(), ['prod-a/a1 ready → disabled']);
      const { body } = await ds.api<StatusReport>('GET', '/api/status');
      assert.deepEqual(body.drift?.repaired, ['prod-a/a1 ready → disabled']);
      assert.deepEqual(
        body.clusters[0]!.members.map((m) => m.admin),
        ['disabled', 'disabled'],
      );
      const status = await runCli(['status', '--admin', ds.adminUrl, '--token', ds.token]);
      assert.match(status.stdout, /warning: drift repaired at .*prod-a\/a1 ready → disabled.*applied it again/);
    } finally {
      assert.equal((await runCli(['live', 'prod-a', '--admin', ds.adminUrl, '--token', ds.token])).code, 0);
    }
  });

  test('release start --plan warns that QA checks without qa_url can reach nothing here', async () => {
    const plan = await runCli([
      'release',
      'start',
      '--version',
      '2.0',
      '--plan',
      '--admin',
      ds.adminUrl,
      '--token',
      ds.token,
    ]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(
      plan.stdout,
      /warning: clusters\.prod-a\.qa_url: with the haproxy driver Dayshift's own port serves nothing/,
    );
  });

  test('what HAProxy cannot do is refused with a clear error, and nothing is stored', async () => {
    const refused = await ds.api<{ error: string }>('POST', '/api/sites/public/maintenance', { message: 'later' });
    assert.equal(refused.status, 501);
    assert.match(refused.body.error, /the haproxy driver cannot put site public in maintenance/);
    const paused = await ds.api<{ error: string }>('POST', '/api/sites/public/pause', { for: '10s' });
    assert.equal(paused.status, 501);
    assert.match(paused.body.error, /the haproxy driver cannot pause site public/);
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    const site = body.sites.find((s) => s.name === 'public')!;
    assert.equal(site.maintenance, undefined);
    assert.equal(site.pause, undefined);
    assert.deepEqual(ds.dayshift.plane.state.sites.public ?? {}, {});
  });

  test("a weight beyond HAProxy's range is refused before anything is stored or applied", async () => {
    const weightOfProdB = async () =>
      (await ds.api<StatusReport>('GET', '/api/status')).body.clusters.find((c) => c.name === 'prod-b')!.weight;
    const before = await weightOfProdB();
    const refused = await ds.api<{ error: string }>('POST', '/api/clusters/prod-b/weight', { weight: 300 });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error, /prod-b\/b1 300, prod-b\/b2 300: HAProxy's weight is 0 to 256/);
    assert.equal(await weightOfProdB(), before);
    // The CLI calls it a refusal (exit 3: nothing changed), not a failure.
    const cli = await runCli(['weight', 'prod-a/a1', '300', '--admin', ds.adminUrl, '--token', ds.token]);
    assert.equal(cli.code, 3, cli.stderr);
    assert.match(cli.stderr, /the haproxy driver cannot give prod-a\/a1 300: HAProxy's weight is 0 to 256/);
    assert.doesNotMatch(cli.stderr, /HTTP 501/);
  });

  test("WEIGHT is the cluster's weight, as with the built-in proxy (not the sum of its members')", async () => {
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    assert.deepEqual(
      body.clusters.map((c) => [c.name, c.weight]),
      [
        ['prod-a', 1],
        ['prod-b', 1],
      ],
    );
  });

  test('a state another instance stored that HAProxy cannot take is not taken, and nothing crashes', async () => {
    const plane = ds.dayshift.plane;
    const foreign = plane.state;
    // prod-a/a1 is not a backup server: HAProxy cannot make it standby (as another instance's plane would
    // have refused; a store written by hand or by an older version can still hold it).
    foreign.members['prod-a/a1']!.admin = 'standby';
    await ds.dayshift.store.put(STATE_KEY, foreign);
    // A change goes through the plane's queue after the adoption: once it is answered, that has run.
    assert.equal((await ds.api('POST', '/api/clusters/prod-b/weight', { weight: 1 })).status, 200);
    assert.equal(plane.state.members['prod-a/a1']!.admin, 'ready');
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    assert.equal(body.clusters[0]!.members[0]!.admin, 'ready');
  });

  test('a reloaded config HAProxy cannot take is refused, and the running one stays', async () => {
    const clusters = config.clusters as Record<string, { members: { url: string; route: string; weight?: number }[] }>;
    const heavy = {
      ...clusters,
      'prod-b': { members: [...clusters['prod-b']!.members, { url: backends[3]!.url, route: 'b3', weight: 300 }] },
    };
    await ds.writeConfig({ ...config, clusters: heavy });
    try {
      const refused = await ds.api<{ error: string }>('POST', '/api/reload');
      assert.equal(refused.status, 422);
      assert.match(
        refused.body.error,
        /configuration refused, the running one stays: the haproxy driver cannot give prod-b\/b3 300/,
      );
      assert.equal(ds.dayshift.plane.config.clusters['prod-b']!.members.length, 2);
    } finally {
      await ds.writeConfig(config);
    }
  });
});
