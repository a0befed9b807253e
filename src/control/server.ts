// One running Dayshift: store, proxy (built-in driver) or external driver, control plane, admin API,
// metrics. `dayshift start`, `dayshift demo` and the tests all start it through here.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { formatDuration } from '../config/units.js';
import { BuiltinDriver } from '../drivers/builtin.js';
import type { Driver } from '../drivers/driver.js';
import { createDriver } from '../drivers/factory.js';
import { splitMemberKey } from '../model.js';
import type { ProxyHandle } from '../proxy/api.js';
import { startProxy } from '../proxy/proxy.js';
import { registerReleaseApi } from '../release/api.js';
import { Conductor } from '../release/conductor.js';
import { openStore } from '../store/open.js';
import { registerDashboard } from '../ui/dashboard.js';
import type { Store } from '../store/store.js';
import { AdminServer } from './admin-server.js';
import { registerControlApi } from './api.js';
import { AuditLog } from './audit.js';
import { defaultInstanceId, instanceFigures, listInstances, startPublishing } from './instances.js';
import { createMetrics, registerMetricsRoute } from './metrics.js';
import { ControlPlane } from './plane.js';
import { StatsSampler } from './sampler.js';
import { listenerOrigin, type StatusReport } from './status.js';
import type { StatusFeed } from './status-feed.js';
import { SessionTracker } from './sessions.js';
import { reconcileState, STATE_KEY, type DesiredState } from './state.js';
import { loadAdminToken, type AdminToken } from './token.js';

export interface Dayshift {
  plane: ControlPlane;
  proxy: ProxyHandle | undefined;
  admin: AdminServer;
  adminAddress: AddressInfo;
  adminUrl: string;
  token: AdminToken;
  store: Store;
  audit: AuditLog;
  sessions: SessionTracker;
  sampler: StatsSampler | undefined;
  /** The shared report behind /api/events. */
  statusFeed: StatusFeed<StatusReport>;
  conductor: Conductor;
  stateDir: string;
  logger: Logger;
  /** Stops accepting, lets requests in flight finish within graceMs, closes everything. */
  close(graceMs?: number): Promise<void>;
}

export const VERSION = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')).version as string;

export async function startDayshift(loaded: LoadedConfig, logger: Logger): Promise<Dayshift> {
  const { config } = loaded;
  const stateDir = resolve(loaded.baseDir, config.state_dir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const store: Store = await openStore(config, loaded.baseDir);
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  try {
    const token = await loadAdminToken(config.admin.token_file, stateDir, loaded.baseDir);
    const audit = new AuditLog(stateDir);
    const sessions = new SessionTracker(config.drain.max_sessions);
    // The config in force, as the control plane holds it (a reload replaces it before applying state).
    const opened: { plane?: ControlPlane } = {};
    const current = () => opened.plane?.loaded ?? loaded;

    // The built-in driver runs Dayshift's own proxy; with Apache or HAProxy, Dayshift is the control
    // plane only and their listeners serve the traffic.
    let proxy: ProxyHandle | undefined;
    let driver: Driver;
    if ((config.driver?.type ?? 'builtin') === 'builtin') {
      const stored = await store.get<DesiredState>(STATE_KEY);
      const cookieSecret = config.cookie_secret ?? (await cookieSecretIn(stateDir));
      const started = await startProxy({ config: loaded, state: reconcileState(config, stored?.value), logger, sessions, cookieSecret });
      proxy = started;
      cleanup.unshift(() => started.close(0));
      driver = new BuiltinDriver(started, current, sessions);
    } else {
      driver = createDriver(config, { baseDir: loaded.baseDir });
      cleanup.unshift(() => driver.close());
    }

    // Several instances share an etcd store: each publishes its live figures, and status and drain
    // waiting add up everyone's. host-pid plus a random part keeps two instances in one process apart.
    const instanceId = `${defaultInstanceId()}-${randomBytes(3).toString('hex')}`;
    const publisher =
      config.store?.type === 'etcd' && proxy
        ? startPublishing(store, () => instanceFigures({ id: instanceId, version: VERSION }, proxy.stats(), sessions.byMember(Date.now(), current().config.drain.session_idle)), {
            // Twice a second: drain waiting on another instance sees this one's requests in flight quickly.
            intervalMs: 500,
            onOutage: (err) =>
              logger.warn({ err }, "the store is unreachable: this instance keeps serving with the state it has, but cannot publish its figures or take changes; next message when it is back"),
            onRecovered: ({ ms, failedRounds }) =>
              logger.info({ outageMs: ms, failedRounds }, `the store is reachable again after ${formatDuration(ms)}: figures published, changes accepted`),
          })
        : undefined;
    if (publisher) {
      cleanup.unshift(async () => publisher.stop());
      await publisher.publishNow().catch(() => undefined);
    }
    const peers = publisher ? async () => (await listInstances(store)).filter((i) => i.id !== instanceId) : undefined;

    const plane = await ControlPlane.open({ loaded, store, driver, audit, logger, ...(proxy ? { proxy } : {}), ...(peers ? { peers } : {}) });
    opened.plane = plane;
    cleanup.unshift(() => plane.close());
    const statsOf = proxy;
    const sampler = statsOf ? new StatsSampler(() => statsOf.stats(), (key) => splitMemberKey(key)[0]) : undefined;
    sampler?.start();
    const admin = new AdminServer({ token: token.value, logger, version: VERSION });
    const statusFeed = registerControlApi(admin, plane, audit, sampler);
    registerMetricsRoute(admin, createMetrics(plane, proxy, proxy ? sessions : undefined), config.admin.metrics_auth);
    // Where QA checks reach the sites: Dayshift's own listener, or the external load balancer's.
    const httpOrigin = () => {
      const bound = proxy?.addresses().http[0];
      return listenerOrigin(bound ? { host: bound.address, port: bound.port } : [plane.config.listen.http].flat()[0]);
    };
    const conductor = await Conductor.open({ plane, logger, sampler, httpOrigin, audit });
    cleanup.unshift(() => conductor.close());
    registerReleaseApi(admin, conductor);
    registerDashboard(admin, { token: token.value, logger });
    const adminAddress = await admin.listen(config.admin.listen.host, config.admin.listen.port).catch((err: Error) => {
      throw new Error(`admin listener: ${err.message}`);
    });
    const pruner = setInterval(() => sessions.prune(Date.now(), current().config.drain.session_idle), 30_000);
    pruner.unref();
    return {
      plane,
      proxy,
      admin,
      adminAddress,
      adminUrl: listenerOrigin({ host: adminAddress.address, port: adminAddress.port })!,
      token,
      store,
      audit,
      sessions,
      sampler,
      statusFeed,
      conductor,
      stateDir,
      logger,
      async close(graceMs = plane.config.timeouts.shutdown) {
        clearInterval(pruner);
        await conductor.close();
        publisher?.stop();
        sampler?.stop();
        await admin.close();
        await proxy?.close(graceMs);
        if (!proxy) await driver.close();
        await plane.close();
        await store.close();
      },
    };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw err;
  }
}

/** The secret that signs sticky cookies: generated once, so cookies stay valid across restarts. */
async function cookieSecretIn(stateDir: string): Promise<string> {
  const path = join(stateDir, 'cookie.secret');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32).toString('base64url');
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}
