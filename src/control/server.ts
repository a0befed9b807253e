// One running Dayshift: store, proxy (built-in driver) or external driver, control plane, admin API,
// metrics. `dayshift start`, `dayshift demo` and the tests all start it through here.
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { DayshiftConfig } from '../config/schema.js';
import { BuiltinDriver } from '../drivers/builtin.js';
import type { ProxyHandle } from '../proxy/api.js';
import { startProxy } from '../proxy/proxy.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { AdminServer } from './admin-server.js';
import { registerControlApi } from './api.js';
import { AuditLog } from './audit.js';
import { defaultInstanceId, instanceFigures, listInstances, startPublishing } from './instances.js';
import { createMetrics, registerMetricsRoute } from './metrics.js';
import { ControlPlane } from './plane.js';
import { StatsSampler } from './sampler.js';
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
  stateDir: string;
  logger: Logger;
  /** Stops accepting, lets requests in flight finish within graceMs, closes everything. */
  close(graceMs?: number): Promise<void>;
}

export const VERSION = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')).version as string;

/** Fails with a clear message when a member's host name does not resolve. */
export async function checkMembersResolve(config: DayshiftConfig): Promise<void> {
  const failures: string[] = [];
  for (const [cluster, c] of Object.entries(config.clusters)) {
    for (const member of c.members) {
      const host = new URL(member.url).hostname.replace(/^\[|\]$/g, '');
      try {
        await lookup(host);
      } catch {
        failures.push(`${cluster}: member ${member.url}: host "${host}" does not resolve`);
      }
    }
  }
  if (failures.length > 0) throw new Error(`cannot start:\n  ${failures.join('\n  ')}`);
}

export async function startDayshift(loaded: LoadedConfig, logger: Logger): Promise<Dayshift> {
  const { config } = loaded;
  const stateDir = resolve(loaded.baseDir, config.state_dir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const store: Store = await openStore(config, loaded.baseDir);
  const token = await loadAdminToken(config.admin.token_file, stateDir, loaded.baseDir);
  const audit = new AuditLog(stateDir);
  const sessions = new SessionTracker(config.drain.max_sessions);
  const cookieSecret = config.cookie_secret ?? (await cookieSecretIn(stateDir));

  const stored = await store.get<DesiredState>(STATE_KEY);
  const initial = reconcileState(config, stored?.value);
  const proxy = await startProxy({ config: loaded, state: initial, logger, sessions, cookieSecret });
  let plane: ControlPlane | undefined;
  const driver = new BuiltinDriver(proxy, () => plane?.loaded ?? loaded, sessions);
  const cleanup: (() => Promise<void>)[] = [() => proxy.close(0), () => store.close()];
  try {
    // Several instances share an etcd store: each publishes its live figures, and status and drain
    // waiting add up everyone's.
    // host-pid plus a random part: unique even for two instances in one process (as in tests).
    const instanceId = `${defaultInstanceId()}-${randomBytes(3).toString('hex')}`;
    const shared = config.store?.type === 'etcd';
    const publisher = shared
      ? startPublishing(store, () => instanceFigures({ id: instanceId, version: VERSION }, proxy.stats(), sessions.byMember(Date.now(), (plane ?? { config }).config.drain.session_idle)), {
          // Twice a second: drain waiting on another instance sees this one's requests in flight quickly.
          intervalMs: 500,
          onError: (err) => logger.warn({ err }, 'could not publish this instance\'s figures to the store'),
        })
      : undefined;
    if (publisher) cleanup.push(async () => publisher.stop());
    await publisher?.publishNow().catch(() => undefined);
    const peers = shared ? async () => (await listInstances(store)).filter((i) => i.id !== instanceId) : undefined;
    plane = await ControlPlane.open({ loaded, store, driver, audit, logger, proxy, ...(peers ? { peers } : {}) });
    const sampler = new StatsSampler(() => proxy.stats(), (key) => key.slice(0, key.indexOf('/')));
    sampler.start();
    const admin = new AdminServer({ token: token.value, logger, version: VERSION });
    registerControlApi(admin, plane, audit, sampler);
    registerMetricsRoute(admin, createMetrics(plane, proxy, sessions), config.admin.metrics_auth);
    const adminAddress = await admin.listen(config.admin.listen.host, config.admin.listen.port).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`admin listener ${config.admin.listen.host}:${config.admin.listen.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`);
    });
    const pruner = setInterval(() => sessions.prune(Date.now(), plane!.config.drain.session_idle), 30_000);
    pruner.unref();
    const host = adminAddress.family === 'IPv6' ? `[${adminAddress.address}]` : adminAddress.address;
    const openPlane = plane;
    return {
      plane: openPlane,
      proxy,
      admin,
      adminAddress,
      adminUrl: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${adminAddress.port}`,
      token,
      store,
      audit,
      sessions,
      sampler,
      stateDir,
      logger,
      async close(graceMs = openPlane.config.timeouts.shutdown) {
        clearInterval(pruner);
        publisher?.stop();
        sampler.stop();
        await admin.close();
        await proxy.close(graceMs);
        await openPlane.close();
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
