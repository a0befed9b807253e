import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { DriverUnsupportedError } from '../../../src/drivers/errors.js';
import { HaproxyDriver } from '../../../src/drivers/haproxy/driver.js';
import { waitUntilIdle } from '../../support/driver-wait.js';
import { initialState } from '../../../src/control/desired-state.js';
import { AppliedState } from '../../support/applied-state.js';
import { startBackend, startLoad, type Backend } from '../../support/backends.js';
import { startBalancedHaproxy, type BalancedHaproxy } from '../../support/haproxy.js';
import { findPeer } from '../../support/peers.js';
import { waitFor } from '../../support/process.js';
import { freePort } from '../../../src/ports.js';

const haproxy = findPeer('haproxy', 'haproxy');

describe('HAProxy driver (real haproxy, Runtime API)', { skip: haproxy.skip }, () => {
  let backends: Backend[] = [];
  let lb: BalancedHaproxy;
  let driver: HaproxyDriver;
  let tcpPort: number;

  before(async () => {
    backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startBackend));
    tcpPort = await freePort();
    lb = await startBalancedHaproxy(
      haproxy.path!,
      { 'prod-a': backends.slice(0, 2), 'prod-b': backends.slice(2) },
      { global: [`stats socket ipv4@127.0.0.1:${tcpPort} level admin`] },
    );
    driver = new HaproxyDriver({ ...lb.driver, state_file: lb.haproxy.stateFile }, lb.clusters);
    await waitFor('every server to pass its health check', async () =>
      (await driver.status()).clusters.every((c) => c.members.every((m) => m.health === 'up')) ? true : undefined,
    );
  });
  after(async () => {
    await driver?.close();
    await lb?.haproxy.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  async function member(cluster: string, id: string) {
    return (await driver.status()).clusters.find((c) => c.name === cluster)?.members.find((m) => m.id === id);
  }

  /** Brings HAProxy to the config's state, then takes changes as the control plane makes them. */
  function fromConfig(): Promise<AppliedState> {
    return AppliedState.open(driver, initialState({ clusters: lb.clusters }));
  }

  test('status maps the backend servers onto clusters, with health from the checks', async () => {
    const status = await driver.status();
    assert.deepEqual(status.warnings, []);
    assert.deepEqual(
      status.clusters.map((c) => [
        c.name,
        c.traffic,
        c.members.map((m) => `${m.id}:${m.admin}:${m.health}:${m.weight}`),
      ]),
      [
        ['prod-a', 'live', ['a1:ready:up:1', 'a2:ready:up:1']],
        ['prod-b', 'live', ['b1:ready:up:1', 'b2:ready:up:1']],
      ],
    );
  });

  test('member states are set with "set server state" and read back; standby is refused for a non-backup server', async () => {
    for (const state of ['draining', 'disabled', 'ready'] as const) {
      await driver.setMemberState('prod-a', 'a1', state);
      assert.equal((await member('prod-a', 'a1'))?.admin, state);
    }
    await assert.rejects(driver.setMemberState('prod-a', 'a1', 'standby'), /cannot make prod-a\/a1 standby/);
  });

  test('a cluster traffic state reaches all its servers: draining = drain, out = maint, live = ready', async () => {
    const state = await fromConfig();
    await state.setTraffic('prod-b', 'draining');
    const draining = await driver.status();
    assert.equal(draining.clusters[1]!.traffic, 'draining');
    assert.deepEqual(
      draining.clusters[1]!.members.map((m) => m.admin),
      ['draining', 'draining'],
    );
    await state.setTraffic('prod-b', 'out');
    const out = await driver.status();
    assert.deepEqual(
      out.clusters[1]!.members.map((m) => m.admin),
      ['disabled', 'disabled'],
    );
    assert.equal(out.clusters[0]!.traffic, 'live');
    await state.setTraffic('prod-b', 'live');
    assert.deepEqual(
      (await driver.status()).clusters[1]!.members.map((m) => m.admin),
      ['ready', 'ready'],
    );
  });

  test('a disabled server stays in maintenance through its cluster draining, going out and live', async () => {
    const state = await fromConfig();
    await state.setMemberState('prod-b/b1', 'disabled');
    const admins = async () => (await driver.status()).clusters[1]!.members.map((m) => `${m.id}:${m.admin}`);
    await state.setTraffic('prod-b', 'draining');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:draining']);
    await state.setTraffic('prod-b', 'out');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:disabled']);
    await state.setTraffic('prod-b', 'live');
    assert.deepEqual(await admins(), ['b1:disabled', 'b2:ready']);
    await state.setMemberState('prod-b/b1', 'ready');
  });

  test('weights are set and read back, a cluster weight multiplies them; out-of-range weights are refused before anything changes', async () => {
    await driver.setMemberWeight('prod-b', 'b2', 50);
    assert.equal((await member('prod-b', 'b2'))?.weight, 50);
    await driver.setMemberWeight('prod-b', 'b2', 1);
    await assert.rejects(driver.setMemberWeight('prod-b', 'b2', 257), DriverUnsupportedError);
    const state = await fromConfig();
    await state.setMemberWeight('prod-b/b2', 100);
    await state.setClusterWeight('prod-b', 2);
    const weights = async () =>
      (await driver.status()).clusters.map((c) => c.members.map((m) => `${m.id}:${m.weight}`));
    assert.deepEqual(await weights(), [
      ['a1:1', 'a2:1'],
      ['b1:2', 'b2:200'],
    ]);
    // 100 × 3 = 300: past HAProxy's weight range, so check() refuses the whole state.
    await assert.rejects(state.setClusterWeight('prod-b', 3), /cannot give prod-b\/b2 300/);
    assert.deepEqual(await weights(), [
      ['a1:1', 'a2:1'],
      ['b1:2', 'b2:200'],
    ]);
    await state.setClusterWeight('prod-b', 1);
    await state.setMemberWeight('prod-b/b2', 1);
  });

  test('a drain saved to the server-state-file survives a reload', async () => {
    await driver.setMemberState('prod-b', 'b1', 'draining');
    assert.match(await readFile(lb.haproxy.stateFile, 'utf8'), /web-prod \d+ b1 127\.0\.0\.1 \d+ 8 /);
    await lb.haproxy.reload();
    assert.equal((await member('prod-b', 'b1'))?.admin, 'draining');
    await driver.setMemberState('prod-b', 'b1', 'ready');
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

  test('drain sees requests in flight through scur and waits for them', async () => {
    const state = await fromConfig();
    const slow = [1, 2, 3].map(() =>
      request(`${lb.haproxy.url}/?sleep=1500`, { headers: { cookie: 'SRVID=a1' } }).then(async (r) => ({
        status: r.statusCode,
        body: await r.body.text(),
      })),
    );
    await waitFor('a1 to have 3 sessions', async () =>
      (await member('prod-a', 'a1'))?.inFlight === 3 ? true : undefined,
    );
    await state.setTraffic('prod-a', 'draining');
    assert.equal((await waitUntilIdle(driver, 'prod-a', { timeoutMs: 10_000, intervalMs: 100 })).idle, true);
    assert.deepEqual(
      await Promise.all(slow),
      [1, 2, 3].map(() => ({ status: 200, body: 'a1' })),
    );
    await state.setTraffic('prod-a', 'live');
  });

  test('a drain of prod-a under load: 0 failed requests, and no new request reaches prod-a after the change', async () => {
    const state = await fromConfig();
    const load = startLoad(`${lb.haproxy.url}/`, { concurrency: 4, maxRequests: 3000, maxMs: 30_000 });
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

  test('the Runtime API is reached over TCP as well as a unix socket', async () => {
    const { socket: _unix, ...rest } = lb.driver;
    const tcp = new HaproxyDriver({ ...rest, address: { host: '127.0.0.1', port: tcpPort } }, lb.clusters);
    await tcp.setMemberWeight('prod-b', 'b1', 3);
    assert.equal((await member('prod-b', 'b1'))?.weight, 3);
    await tcp.setMemberWeight('prod-b', 'b1', 1);
  });

  test('a backend that does not exist is named in the error', async () => {
    const wrong = new HaproxyDriver({ ...lb.driver, backend: 'nope' }, lb.clusters);
    await assert.rejects(wrong.status(), /show servers state nope: Can't find backend/);
  });
});

describe('HAProxy driver: backup servers and matching by address', { skip: haproxy.skip }, () => {
  let backends: Backend[] = [];
  let lb: BalancedHaproxy;
  before(async () => {
    backends = await Promise.all(['a1', 'spare'].map(startBackend));
    lb = await startBalancedHaproxy(haproxy.path!, { 'prod-a': backends }, { backup: ['spare'] });
  });
  after(async () => {
    await lb?.haproxy.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('a backup server reads as standby, and stays standby after its cluster goes out and live again', async () => {
    const driver = new HaproxyDriver({ ...lb.driver, match: 'address' }, lb.clusters);
    const admins = async () => (await driver.status()).clusters[0]!.members.map((m) => `${m.id}:${m.admin}`);
    assert.deepEqual(await admins(), ['a1:ready', 'spare:standby']);
    // A config that knows the spare is standby: the desired state says so, and HAProxy takes it.
    const config = initialState({ clusters: lb.clusters });
    config.members['prod-a/spare']!.admin = 'standby';
    const state = await AppliedState.open(driver, config);
    assert.deepEqual(await admins(), ['a1:ready', 'spare:standby']);
    await state.setTraffic('prod-a', 'draining');
    assert.deepEqual(await admins(), ['a1:draining', 'spare:draining']);
    await state.setTraffic('prod-a', 'out');
    assert.deepEqual(await admins(), ['a1:disabled', 'spare:disabled']);
    await state.setTraffic('prod-a', 'live');
    assert.deepEqual(await admins(), ['a1:ready', 'spare:standby']);
    // Refused by check(), before the state is taken: nothing changed. Also while its cluster is out,
    // where it would only fail when the cluster goes live again.
    await assert.rejects(state.setMemberState('prod-a/a1', 'standby'), /cannot make prod-a\/a1 standby at run time/);
    assert.equal(state.state.members['prod-a/a1']!.admin, 'ready');
    assert.deepEqual(await admins(), ['a1:ready', 'spare:standby']);
    await state.setTraffic('prod-a', 'out');
    await assert.rejects(state.setMemberState('prod-a/a1', 'standby'), /cannot make prod-a\/a1 standby at run time/);
    await state.setTraffic('prod-a', 'live');
    assert.deepEqual(await admins(), ['a1:ready', 'spare:standby']);
    // A config that leaves the spare ready (the default) is applied too: ready is what a backup server can be.
    await AppliedState.open(driver, initialState({ clusters: lb.clusters }));
    assert.deepEqual(await admins(), ['a1:ready', 'spare:standby']);
  });
});
