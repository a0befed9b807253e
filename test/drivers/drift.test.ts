// What Dayshift says about an Apache httpd or HAProxy it drives stays true: a restart or reload that puts
// every member back as the config file says (httpd without BalancerPersist, HAProxy without a state file)
// is found and repaired, and a drain through them ends only once the balancer sent the target no new
// request for the session idle window, sticky requests included.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import type { DayshiftConfig } from '../../src/config/schema.js';
import type { ControlPlane } from '../../src/control/plane.js';
import { RefusedError } from '../../src/control/errors.js';
import { freePort } from '../../src/ports.js';
import { startBackend, type Backend } from '../support/backends.js';
import { startBalancedHttpd, type BalancedHttpd } from '../support/httpd.js';
import { startHaproxy, type Haproxy } from '../support/haproxy.js';
import { openPlaneOn, twoClusterConfig } from '../support/load-balancers.js';
import { requirePeer } from '../support/peers.js';
import { waitFor } from '../support/process.js';
import { exportHaproxy } from '../../src/drivers/haproxy/export.js';

const actor = { who: 'test', from: '127.0.0.1' };

/** The members' admin states as the plane reads them from the balancer, cluster by cluster. */
async function admins(plane: ControlPlane): Promise<string[][]> {
  return (await plane.status()).clusters.map((c) => c.members.map((m) => m.admin));
}

/** Sends a sticky request to `route` through the balancer and returns which backend answered. */
async function sticky(url: string, cookie: string, host = 'example.com'): Promise<string> {
  const res = await request(url, { headers: { host, cookie } });
  await res.body.text();
  return String(res.headers['x-backend']);
}

describe('drift and drains on real load balancers', () => {
  let backends: Backend[] = [];
  before(async () => {
    backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startBackend));
  });
  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
  });

  /** httpd in the origin layout without BalancerPersist, and a plane driving it (verify_interval as given). */
  async function apache(
    t: TestContext,
    verifyInterval = '1h',
  ): Promise<
    | {
        lb: BalancedHttpd;
        plane: ControlPlane;
        audit: Awaited<ReturnType<typeof openPlaneOn>>['audit'];
        close(): Promise<void>;
      }
    | undefined
  > {
    const binary = requirePeer(t, 'apache2', 'apache2');
    if (!binary) return undefined;
    const lb = await startBalancedHttpd(
      binary,
      { 'prod-a': backends.slice(0, 2), 'prod-b': backends.slice(2) },
      { persist: false },
    );
    const config = twoClusterConfig(lb.httpd.port, backends, {
      type: 'apache',
      url: lb.httpd.managerUrl,
      balancer: 'web-prod',
      verify_interval: verifyInterval,
    });
    const opened = await openPlaneOn({ config, url: `${lb.httpd.url}/`, stop: () => lb.httpd.stop() });
    return { lb, ...opened, close: async () => (await opened.close(), await lb.httpd.stop()) };
  }

  async function httpdSignal(lb: BalancedHttpd, signal: NodeJS.Signals): Promise<void> {
    const pid = Number((await readFile(join(lb.httpd.dir, 'run', 'httpd.pid'), 'utf8')).trim());
    process.kill(pid, signal);
  }

  for (const [kind, signal] of [
    ['graceful', 'SIGUSR1'],
    ['hard', 'SIGHUP'],
    ['stop and start', undefined],
  ] as const) {
    test(`apache: a ${kind} restart without BalancerPersist brings prod-a back; the next check takes it out again, audited`, async (t) => {
      const env = await apache(t);
      if (!env) return;
      try {
        await env.plane.setTraffic(actor, 'prod-a', 'out');
        assert.deepEqual(await admins(env.plane), [
          ['disabled', 'disabled'],
          ['ready', 'ready'],
        ]);
        if (signal) await httpdSignal(env.lb, signal);
        else await env.lb.httpd.restart();
        // httpd answers again with every member as httpd.conf has it: Dayshift's "out" is gone.
        await waitFor(
          'httpd to restart with prod-a back',
          async () => {
            try {
              return (await admins(env.plane))[0]!.every((a) => a === 'ready') ? true : undefined;
            } catch {
              return undefined;
            }
          },
          20_000,
          100,
        );
        const repaired = await env.plane.verifyDriver();
        assert.deepEqual(repaired.sort(), ['prod-a/a1 ready → disabled', 'prod-a/a2 ready → disabled']);
        assert.deepEqual(await admins(env.plane), [
          ['disabled', 'disabled'],
          ['ready', 'ready'],
        ]);
        assert.match(
          await sticky(env.lb.httpd.url, 'ROUTEID=.a1'),
          /^b[12]$/,
          'a session bound to prod-a is sent to prod-b again',
        );
        const entry = (await env.audit.tail(1))[0]!;
        assert.equal(entry.action, 'drift repaired');
        assert.equal(entry.who, 'system');
        assert.match((await env.plane.status()).warnings.join('\n'), /drift repaired at .*prod-a\/a1 ready → disabled/);
        assert.deepEqual(await env.plane.verifyDriver(), [], 'nothing left to repair');
      } finally {
        await env.close();
      }
    });
  }

  test('apache: `out` on a cluster Dayshift already has out checks httpd and applies it again', async (t) => {
    const env = await apache(t);
    if (!env) return;
    try {
      await env.plane.setTraffic(actor, 'prod-a', 'out');
      await httpdSignal(env.lb, 'SIGUSR1');
      await waitFor(
        'httpd to restart with prod-a back',
        async () => ((await admins(env.plane).catch(() => []))[0]?.every((a) => a === 'ready') ? true : undefined),
        20_000,
        100,
      );
      // Nothing changes in Dayshift's state: before, this printed "prod-a is now out" and did nothing.
      await env.plane.setTraffic(actor, 'prod-a', 'out');
      assert.deepEqual(await admins(env.plane), [
        ['disabled', 'disabled'],
        ['ready', 'ready'],
      ]);
      assert.deepEqual(
        (await env.audit.tail(2)).map((e) => e.action),
        ['drift repaired', 'out'],
      );
    } finally {
      await env.close();
    }
  });

  test('apache: weight 0 is refused as a refusal (nothing stored or applied), pointing at disable', async (t) => {
    const env = await apache(t);
    if (!env) return;
    try {
      await assert.rejects(
        env.plane.setMemberWeight(actor, 'prod-a/a1', 0),
        (err: unknown) =>
          err instanceof RefusedError &&
          /prod-a\/a1 0: httpd's loadfactor \(to send a member nothing, use `dayshift disable`\) is 1 to 100/.test(
            err.message,
          ),
      );
      assert.equal(env.plane.state.members['prod-a/a1']!.weight, 1);
      assert.deepEqual(
        (await env.plane.status()).clusters.map((c) => [c.weight, c.members.map((m) => m.weight)]),
        [
          [1, [1, 1]],
          [1, [1, 1]],
        ],
        'WEIGHT as with the built-in proxy',
      );
    } finally {
      await env.close();
    }
  });

  test('apache: the periodic check (driver.verify_interval) repairs a restart on its own', async (t) => {
    const env = await apache(t, '1s');
    if (!env) return;
    try {
      await env.plane.setTraffic(actor, 'prod-a', 'out');
      await httpdSignal(env.lb, 'SIGHUP');
      await waitFor(
        'the periodic check to repair the drift',
        async () => (env.plane.drift ? true : undefined),
        20_000,
        100,
      );
      assert.deepEqual(env.plane.drift!.repaired.sort(), ['prod-a/a1 ready → disabled', 'prod-a/a2 ready → disabled']);
      assert.deepEqual(await admins(env.plane), [
        ['disabled', 'disabled'],
        ['ready', 'ready'],
      ]);
    } finally {
      await env.close();
    }
  });

  /** The exported two-cluster HAProxy setup, driven without driver.state_file. */
  async function haproxy(t: TestContext): Promise<{ lb: Haproxy; config: DayshiftConfig; url: string } | undefined> {
    const binary = requirePeer(t, 'haproxy', 'haproxy');
    if (!binary) return undefined;
    const port = await freePort();
    const draft = twoClusterConfig(port, backends, {
      type: 'haproxy',
      socket: 'admin.sock',
      backend: 'public',
      verify_interval: '1h',
    });
    const exported = exportHaproxy(draft, { socket: 'admin.sock', stateFile: 'state', source: 'test' });
    const lb = await startHaproxy(binary, exported.text.slice(exported.text.indexOf('\nfrontend ') + 1));
    const config = {
      ...draft,
      driver: {
        type: 'haproxy' as const,
        socket: lb.socket,
        backend: 'public',
        match: 'name' as const,
        timeout: 5000,
        verify_interval: 3_600_000,
      },
    };
    return { lb, config, url: `http://127.0.0.1:${port}` };
  }

  test('haproxy: a reload without a state file brings prod-a back; the next check takes it out again', async (t) => {
    const env = await haproxy(t);
    if (!env) return;
    const { plane, audit, close } = await openPlaneOn({ config: env.config, url: env.url, stop: () => env.lb.stop() });
    try {
      await plane.setTraffic(actor, 'prod-a', 'out');
      assert.deepEqual(await admins(plane), [
        ['disabled', 'disabled'],
        ['ready', 'ready'],
      ]);
      await env.lb.reload();
      assert.deepEqual(
        await admins(plane),
        [
          ['ready', 'ready'],
          ['ready', 'ready'],
        ],
        'the reload put prod-a back',
      );
      assert.deepEqual((await plane.verifyDriver()).sort(), [
        'prod-a/a1 ready → disabled',
        'prod-a/a2 ready → disabled',
      ]);
      assert.deepEqual(await admins(plane), [
        ['disabled', 'disabled'],
        ['ready', 'ready'],
      ]);
      assert.equal((await audit.tail(1))[0]!.action, 'drift repaired');
    } finally {
      await close();
      await env.lb.stop();
    }
  });

  /**
   * A user keeps a session on prod-a's first member while prod-a drains: the drain must not end while
   * that user's requests still arrive, and ends the idle window (2s) after the last one, saying it went
   * by the balancer's request count.
   */
  async function drainWithStickyUser(plane: ControlPlane, url: string, cookie: string): Promise<void> {
    await plane.setTraffic(actor, 'prod-a', 'draining');
    let drainedAt: number | undefined;
    const waiting = plane.waitDrained(plane.target('prod-a'), { pollMs: 100 }).then((p) => {
      drainedAt = Date.now();
      return p;
    });
    // Awaited below; a failure before that must not go unhandled.
    waiting.catch(() => undefined);
    let lastSent = 0;
    const served: string[] = [];
    for (let i = 0; i < 12; i++) {
      lastSent = Date.now();
      served.push(await sticky(url, cookie));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.equal(drainedAt, undefined, 'the drain ended while the user was still active');
    assert.deepEqual([...new Set(served)], ['a1'], 'the draining member kept its sticky session');
    const final = await waiting;
    assert.equal(final.reason, 'idle');
    assert.equal(final.basis, 'requests');
    assert.equal(final.sessions, undefined, 'no session count is made up');
    assert.ok(
      drainedAt! - lastSent >= 2000,
      `drained ${drainedAt! - lastSent} ms after the last request, before the 2s idle window`,
    );
  }

  test('apache: a drain holds while sticky requests reach the member (elected), then ends after the idle window', async (t) => {
    const env = await apache(t);
    if (!env) return;
    try {
      await drainWithStickyUser(env.plane, env.lb.httpd.url, 'ROUTEID=.a1');
    } finally {
      await env.close();
    }
  });

  test('haproxy: a drain holds while sticky requests reach the server (stot), then ends after the idle window', async (t) => {
    const env = await haproxy(t);
    if (!env) return;
    const { plane, close } = await openPlaneOn({ config: env.config, url: env.url, stop: () => env.lb.stop() });
    try {
      await drainWithStickyUser(plane, env.url, 'JSESSIONID=s1.a1');
    } finally {
      await close();
      await env.lb.stop();
    }
  });
});
