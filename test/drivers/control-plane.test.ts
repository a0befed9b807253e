// The control plane (what the admin API, CLI and release conductor use) driving a real Apache httpd and
// a real HAProxy: one release step of the origin procedure under load, through each driver.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { startBackend, startLoad, type Backend } from '../support/backends.js';
import {
  openPlaneOn,
  startExportedHaproxy,
  startExportedHttpd,
  type RunningLoadBalancer,
} from '../support/load-balancers.js';
import { requirePeer } from '../support/peers.js';
import { waitFor } from '../support/process.js';

const actor = { who: 'test', from: '127.0.0.1' };

/**
 * Drain prod-a through the control plane while load runs on the public site, wait until drained, take it
 * out, check QA still reaches it, put it back. 0 failed requests; no load request started after the
 * drain took effect reached prod-a; the audit log has every step.
 */
async function releaseStep(lb: RunningLoadBalancer, backends: Backend[]): Promise<void> {
  const { plane, audit, close } = await openPlaneOn(lb);
  try {
    const load = startLoad(lb.url, {
      concurrency: 4,
      maxRequests: 20_000,
      maxMs: 30_000,
      headers: { host: 'example.com' },
    });
    await load.completed(100);
    const prodA = plane.target('prod-a');
    await plane.setTraffic(actor, prodA.cluster, 'draining');
    const changed = Date.now();
    const drained = await plane.waitDrained(prodA, { pollMs: 50 });
    assert.equal(drained.reason, 'idle');
    await plane.setTraffic(actor, prodA.cluster, 'out');
    assert.deepEqual(
      (await plane.status()).clusters.map((c) => c.traffic),
      ['out', 'live'],
    );
    const served = () => backends[2]!.received.length + backends[3]!.received.length;
    const before = served();
    await waitFor(
      'prod-b to serve 200 more requests',
      async () => (served() >= before + 200 ? true : undefined),
      20_000,
    );
    const qa = await request(lb.url, { headers: { host: 'prod-a.example.com' } });
    assert.equal(qa.statusCode, 200);
    assert.match(await qa.body.text(), /^a[12]$/);
    // Requests started once prod-a is live again may reach it: only those before count.
    const liveAt = Date.now();
    await plane.setTraffic(actor, prodA.cluster, 'live');
    await waitFor(
      'prod-a to serve again',
      async () => (backends[0]!.received.some((r) => r.start > liveAt) ? true : undefined),
      20_000,
    );
    const result = await load.stop();
    assert.deepEqual(result.errors, []);
    const late = backends
      .slice(0, 2)
      .flatMap((b) =>
        b.received.filter((r) => r.seq >= 0 && r.start > changed && r.start < liveAt).map((r) => `${b.name} #${r.seq}`),
      );
    assert.deepEqual(late, [], 'load requests reached prod-a between the drain and live');
    assert.deepEqual(
      (await plane.status()).clusters.map((c) => c.traffic),
      ['live', 'live'],
    );
    assert.deepEqual(
      (await audit.tail(3)).map((e) => `${e.action} ${e.target}`),
      ['draining prod-a', 'out prod-a', 'live prod-a'],
    );
  } finally {
    await close();
  }
}

describe('the control plane drives real load balancers through a release step', () => {
  let backends: Backend[] = [];
  before(async () => {
    backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startBackend));
  });
  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
  });

  async function withLoadBalancer(
    t: TestContext,
    binary: string,
    pkg: string,
    start: (binary: string, backends: Backend[]) => Promise<RunningLoadBalancer>,
  ): Promise<void> {
    const found = requirePeer(t, binary, pkg);
    if (!found) return;
    const lb = await start(found, backends);
    try {
      await releaseStep(lb, backends);
    } finally {
      await lb.stop();
    }
  }

  test('Apache httpd (apache driver)', (t) => withLoadBalancer(t, 'apache2', 'apache2', startExportedHttpd));
  test('HAProxy (haproxy driver)', (t) => withLoadBalancer(t, 'haproxy', 'haproxy', startExportedHaproxy));
});
