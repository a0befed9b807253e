// A whole release through the conductor on top of a real Apache httpd and a real HAProxy (issue 6):
// both clusters drained, taken out, deployed, gated and put back under load, with 0 failed requests
// and no new request reaching a cluster between its drain and its return.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { releaseSchema } from '../../src/config/release-schema.js';
import { Conductor } from '../../src/release/conductor.js';
import type { Release } from '../../src/release/types.js';
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

async function releaseThrough(lb: RunningLoadBalancer, backends: Backend[]): Promise<void> {
  const config = {
    ...lb.config,
    release: releaseSchema.parse({
      approval: 'auto',
      drain: { session_idle: '1s' },
      health: { timeout: '20s', stable: '500ms' },
      hooks: { deploy: 'echo deploying $DAYSHIFT_VERSION to $DAYSHIFT_CLUSTER' },
    }),
  };
  const { plane, audit, close } = await openPlaneOn(lb, config);
  const conductor = await Conductor.open({ plane, logger: pino({ level: 'silent' }), audit, pollMs: 50 });
  try {
    const load = startLoad(lb.url, {
      concurrency: 4,
      maxRequests: 20_000,
      maxMs: 60_000,
      headers: { host: 'example.com' },
    });
    await load.completed(100);
    // Every traffic change, with when it was asked for and when it took effect, from the conductor's journal.
    await conductor.start(actor, '2.0');
    const release = await waitFor(
      'the release to end',
      async () => {
        const r = conductor.current();
        return r && ['succeeded', 'failed', 'aborted'].includes(r.state) ? r : undefined;
      },
      90_000,
    );
    const result = await load.stop();
    const failedStep = release.steps.find((s) => s.state === 'failed');
    assert.equal(release.state, 'succeeded', `${failedStep?.title}: ${failedStep?.detail}`);
    assert.deepEqual(result.errors, [], 'no failed request');
    for (const [cluster, members] of [
      ['prod-a', backends.slice(0, 2)],
      ['prod-b', backends.slice(2)],
    ] as const) {
      const { drainedFrom, liveFrom } = window(release, cluster);
      const late = members.flatMap((b) =>
        b.received
          .filter((r) => r.seq >= 0 && r.start > drainedFrom && r.start < liveFrom)
          .map((r) => `${b.name} #${r.seq}`),
      );
      assert.deepEqual(late, [], `load requests reached ${cluster} between its drain and its return`);
    }
    assert.deepEqual(
      (await plane.status()).clusters.map((c) => c.traffic),
      ['live', 'live'],
    );
    const deploy = release.steps.find((s) => s.id === 'prod-a:deploy');
    assert.deepEqual(deploy?.output, ['deploying 2.0 to prod-a']);
  } finally {
    await conductor.close();
    await close();
  }
}

/** From when the cluster's drain step started (plus the change's own time) to when its shift step started. */
function window(release: Release, cluster: string): { drainedFrom: number; liveFrom: number } {
  const drain = release.steps.find((s) => s.id === `${cluster}:drain`)!;
  const shift = release.steps.find((s) => s.id === `${cluster}:shift`)!;
  // The drain takes effect once the driver confirmed it; a request started in that instant may still go there.
  return { drainedFrom: Date.parse(drain.startedAt!) + 1000, liveFrom: Date.parse(shift.startedAt!) };
}

describe('a release through the load balancer you already run', () => {
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
    const path = requirePeer(t, binary, pkg);
    if (!path) return;
    for (const b of backends) b.received.length = 0;
    const lb = await start(path, backends);
    try {
      await releaseThrough(lb, backends);
    } finally {
      await lb.stop();
    }
  }

  test('Apache httpd (apache driver)', (t) => withLoadBalancer(t, 'apache2', 'apache2', startExportedHttpd));
  test('HAProxy (haproxy driver)', (t) => withLoadBalancer(t, 'haproxy', 'haproxy', startExportedHaproxy));
});
