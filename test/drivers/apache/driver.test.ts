import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { ApacheDriver } from '../../../src/drivers/apache/driver.js';
import { DriverUnsupportedError } from '../../../src/drivers/errors.js';
import { waitUntilIdle } from '../../support/driver-wait.js';
import { initialState } from '../../../src/control/desired-state.js';
import { AppliedState } from '../../support/applied-state.js';
import { startBackend, startLoad, type Backend } from '../../support/backends.js';
import { startBalancedHttpd, type BalancedHttpd } from '../../support/httpd.js';
import { findPeer } from '../../support/peers.js';
import { waitFor } from '../../support/process.js';

const apache2 = findPeer('apache2', 'apache2');

describe('Apache httpd driver (real apache2, balancer-manager)', { skip: apache2.skip }, () => {
  let backends: Backend[] = [];
  let lb: BalancedHttpd;
  let driver: ApacheDriver;

  before(async () => {
    backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startBackend));
    lb = await startBalancedHttpd(apache2.path!, { 'prod-a': backends.slice(0, 2), 'prod-b': backends.slice(2) });
    driver = new ApacheDriver(lb.driver, lb.clusters);
  });
  after(async () => {
    await driver?.close();
    await lb?.httpd.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  async function admin(cluster: string, member: string) {
    const status = await driver.status();
    return status.clusters.find((c) => c.name === cluster)?.members.find((m) => m.id === member);
  }

  /** Brings httpd to the config's state, then takes changes as the control plane makes them. */
  function fromConfig(): Promise<AppliedState> {
    return AppliedState.open(driver, initialState({ clusters: lb.clusters }));
  }

  async function managerXml(): Promise<string> {
    return (await request(`${lb.httpd.managerUrl}?xml=1`, { headers: { referer: lb.httpd.managerUrl } })).body.text();
  }

  /** A member's status tokens as httpd prints them (Init Ok Stby ...), found by its route. */
  async function httpdStatus(route: string): Promise<string[]> {
    const worker = (await managerXml())
      .split('<httpd:worker>')
      .find((w) => w.includes(`<httpd:route>${route}</httpd:route>`));
    return (
      worker
        ?.match(/<httpd:status>([^<]*)<\/httpd:status>/)?.[1]
        ?.trim()
        .split(/\s+/) ?? []
    );
  }

  test('status maps balancer members onto clusters, with BalancerPersist on and no warnings', async () => {
    const status = await driver.status();
    assert.deepEqual(status.warnings, []);
    assert.deepEqual(
      status.clusters.map((c) => [c.name, c.traffic, c.members.map((m) => `${m.id}:${m.admin}:${m.weight}`)]),
      [
        ['prod-a', 'live', ['a1:ready:1', 'a2:ready:1']],
        ['prod-b', 'live', ['b1:ready:1', 'b2:ready:1']],
      ],
    );
  });

  test('members are found by route as well as by URL', async () => {
    const byRoute = new ApacheDriver({ ...lb.driver, match: 'route' }, lb.clusters);
    // When each member last took a request is as each driver instance watched it: left out.
    const members = async (d: ApacheDriver) =>
      (await d.status()).clusters.map((c) => c.members.map(({ lastRequestMs: _, ...m }) => m));
    assert.deepEqual(await members(byRoute), await members(driver));
  });

  test('each member state is set as its httpd flag and read back', async () => {
    for (const state of ['draining', 'disabled', 'standby', 'ready'] as const) {
      await driver.setMemberState('prod-a', 'a1', state);
      assert.equal((await admin('prod-a', 'a1'))?.admin, state);
    }
    assert.match(
      await managerXml(),
      /<httpd:name>http:\/\/127\.0\.0\.1:\d+<\/httpd:name>[\s\S]*?<httpd:status>Init Ok <\/httpd:status>/,
    );
  });

  test('a cluster traffic state reaches all its members: draining = N, out = D, live clears them', async () => {
    const state = await fromConfig();
    await state.setTraffic('prod-b', 'draining');
    let status = await driver.status();
    assert.equal(status.clusters[1]!.traffic, 'draining');
    assert.deepEqual(
      status.clusters[1]!.members.map((m) => m.admin),
      ['draining', 'draining'],
    );
    assert.ok((await httpdStatus('b1')).includes('Drn'));
    await state.setTraffic('prod-b', 'out');
    status = await driver.status();
    assert.equal(status.clusters[1]!.traffic, 'out');
    assert.equal(status.clusters[0]!.traffic, 'live');
    assert.ok((await httpdStatus('b1')).includes('Dis'));
    await state.setTraffic('prod-b', 'live');
    status = await driver.status();
    assert.deepEqual(
      status.clusters[1]!.members.map((m) => m.admin),
      ['ready', 'ready'],
    );
    assert.deepEqual(await httpdStatus('b1'), ['Init', 'Ok']);
  });

  test('members keep their own state through their cluster going out and live: standby keeps H, disabled keeps D', async () => {
    const state = await fromConfig();
    await state.setMemberState('prod-b/b1', 'disabled');
    await state.setMemberState('prod-b/b2', 'standby');
    const admins = async () => (await driver.status()).clusters[1]!.members.map((m) => `${m.id}:${m.admin}`);
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:standby']);
    await state.setTraffic('prod-b', 'draining');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:draining']);
    await state.setTraffic('prod-b', 'out');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:disabled']);
    await state.setTraffic('prod-b', 'live');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:standby']);
    assert.ok((await httpdStatus('b2')).includes('Stby'), 'b2 has its H flag again');
    assert.ok(!(await httpdStatus('b2')).includes('Dis'));
    // Straight from out to live, without draining in between, too.
    await state.setTraffic('prod-b', 'out');
    await state.setTraffic('prod-b', 'live');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:standby']);
    await state.setMemberState('prod-b/b1', 'ready');
    await state.setMemberState('prod-b/b2', 'ready');
  });

  test('weight is the loadfactor, a cluster weight multiplies it; out-of-range weights are refused before anything changes', async () => {
    await driver.setMemberWeight('prod-b', 'b2', 7);
    assert.equal((await admin('prod-b', 'b2'))?.weight, 7);
    await driver.setMemberWeight('prod-b', 'b2', 1);
    await assert.rejects(driver.setMemberWeight('prod-b', 'b2', 0), DriverUnsupportedError);
    await assert.rejects(driver.setMemberWeight('prod-b', 'b2', 101), DriverUnsupportedError);
    const state = await fromConfig();
    await state.setMemberWeight('prod-b/b2', 30);
    await state.setClusterWeight('prod-b', 2);
    const weights = async () =>
      (await driver.status()).clusters.map((c) => c.members.map((m) => `${m.id}:${m.weight}`));
    assert.deepEqual(await weights(), [
      ['a1:1', 'a2:1'],
      ['b1:2', 'b2:60'],
    ]);
    // 30 × 4 = 120: past httpd's loadfactor range, so check() refuses the whole state.
    await assert.rejects(state.setClusterWeight('prod-b', 4), /cannot give prod-b\/b2 120/);
    assert.deepEqual(await weights(), [
      ['a1:1', 'a2:1'],
      ['b1:2', 'b2:60'],
    ]);
    assert.equal(state.state.clusters['prod-b']!.weight, 2);
    // While prod-b is out its members carry no cluster weight, but a weight that could not be applied once
    // it is live again is refused now, not at "live" halfway through a release.
    await state.setTraffic('prod-b', 'out');
    await assert.rejects(state.setMemberWeight('prod-b/b2', 60), /cannot give prod-b\/b2 120/);
    await state.setTraffic('prod-b', 'live');
    await state.setClusterWeight('prod-b', 1);
    await state.setMemberWeight('prod-b/b2', 1);
    assert.equal(driver.capabilities.has('sessions'), false);
  });

  test('unknown members are named in the error', async () => {
    await assert.rejects(driver.setMemberState('prod-c', '1', 'ready'), /unknown member "prod-c\/1"/);
    const start = initialState({ clusters: lb.clusters });
    const extra = structuredClone(start);
    extra.clusters['prod-c'] = { traffic: 'out', weight: 1 };
    extra.members['prod-c/1'] = { admin: 'ready', weight: 1 };
    await assert.rejects(driver.apply(extra, start), /unknown member "prod-c\/1"/);
  });

  test('apply sets a desired state, then changes only what differs; maintenance is refused', async () => {
    const start = initialState({ clusters: lb.clusters });
    await driver.apply(start, undefined);
    const next = structuredClone(start);
    next.clusters['prod-a']!.traffic = 'draining';
    next.members['prod-b/b2']!.weight = 3;
    await driver.apply(next, start);
    let status = await driver.status();
    assert.deepEqual(
      status.clusters.map((c) => [c.traffic, c.members.map((m) => `${m.admin}:${m.weight}`)]),
      [
        ['draining', ['draining:1', 'draining:1']],
        ['live', ['ready:1', 'ready:3']],
      ],
    );
    await driver.apply(start, next);
    status = await driver.status();
    assert.deepEqual(
      status.clusters.map((c) => c.traffic),
      ['live', 'live'],
    );
    assert.equal(status.clusters[1]!.members[1]!.weight, 1);
    const maintenance = { ...start, sites: { public: { maintenance: { message: 'back soon' } } } };
    await assert.rejects(driver.apply(maintenance, start), DriverUnsupportedError);
  });

  test('drain sees requests in flight through busy and waits for them', async () => {
    const state = await fromConfig();
    // Three slow requests pinned to a1 by its route; a1 drains but keeps serving them.
    const slow = [1, 2, 3].map(() =>
      request(`${lb.httpd.url}/?sleep=1500`, { headers: { cookie: 'ROUTEID=.a1' } }).then(async (r) => ({
        status: r.statusCode,
        body: await r.body.text(),
      })),
    );
    await waitFor('a1 to have 3 requests in flight', async () =>
      (await admin('prod-a', 'a1'))?.inFlight === 3 ? true : undefined,
    );
    await state.setTraffic('prod-a', 'draining');
    const idle = await waitUntilIdle(driver, 'prod-a', { timeoutMs: 10_000, intervalMs: 100 });
    assert.equal(idle.idle, true);
    assert.deepEqual(
      await Promise.all(slow),
      [1, 2, 3].map(() => ({ status: 200, body: 'a1' })),
    );
    await state.setTraffic('prod-a', 'live');
  });

  test('a drain of prod-a under load: 0 failed requests, and no new request reaches prod-a after the change', async () => {
    const state = await fromConfig();
    const load = startLoad(`${lb.httpd.url}/`, { concurrency: 4, maxRequests: 3000, maxMs: 30_000 });
    await load.completed(100);
    await state.setTraffic('prod-a', 'draining');
    const changed = Date.now();
    await waitUntilIdle(driver, 'prod-a', { timeoutMs: 10_000, intervalMs: 50 });
    await state.setTraffic('prod-a', 'out');
    const before = backends[2]!.received.length + backends[3]!.received.length;
    await waitFor(
      'prod-b to serve 200 more requests',
      async () => (backends[2]!.received.length + backends[3]!.received.length >= before + 200 ? true : undefined),
      20_000,
    );
    const result = await load.stop();
    assert.deepEqual(result.errors, []);
    assert.equal(result.failed, 0);
    const late = backends
      .slice(0, 2)
      .flatMap((b) => b.received.filter((r) => r.start > changed).map((r) => `${b.name} #${r.seq}`));
    assert.deepEqual(late, [], 'requests started after the drain took effect reached prod-a');
    assert.ok(
      (result.byBackend.a1 ?? 0) > 0 && (result.byBackend.b1 ?? 0) > 0,
      'both clusters served before the drain',
    );
    await state.setTraffic('prod-a', 'live');
  });

  test("every read and change above was taken as the manager's own: no AH10187 in httpd's error log", async () => {
    assert.doesNotMatch(await lb.httpd.log(), /AH10187/);
  });
});

describe(
  'Apache httpd driver with BalancerPersist Off and changes locked (ProxySet nonce=None)',
  { skip: apache2.skip },
  () => {
    let backend: Backend;
    let lb: BalancedHttpd;
    before(async () => {
      backend = await startBackend('a1');
      lb = await startBalancedHttpd(apache2.path!, { 'prod-a': [backend] }, { persist: false, proxySet: 'nonce=None' });
    });
    after(async () => {
      await lb?.httpd.stop();
      await backend?.close();
    });

    test('status warns that changes are lost on a graceful restart', async () => {
      const status = await new ApacheDriver(lb.driver, lb.clusters).status();
      assert.deepEqual(status.warnings.filter((w) => w.startsWith('BalancerPersist is off')).length, 1);
    });

    test('a change httpd ignores while answering 200 is detected by reading it back', async () => {
      const driver = new ApacheDriver(lb.driver, lb.clusters);
      await assert.rejects(
        driver.setMemberState('prod-a', 'a1', 'disabled'),
        /httpd did not apply "set member prod-a\/a1 disabled"/,
      );
      const status = await driver.status();
      assert.equal(status.clusters[0]!.members[0]!.admin, 'ready');
    });
  },
);
