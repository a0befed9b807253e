// One running Dayshift: store, proxy (built-in driver) or external driver, control plane, admin API,
// metrics. `dayshift start`, `dayshift demo` and the tests all start it through here.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load.js';
import { formatDuration } from './config/units.js';
import { StickySigner } from './balance/sticky.js';
import { BuiltinDriver } from './drivers/builtin.js';
import type { Driver } from './drivers/driver.js';
import { createDriver } from './drivers/factory.js';
import { splitMemberKey, type DesiredState } from './model.js';
import type { ProxyHandle } from './proxy/handle.js';
import { startProxy } from './proxy/proxy.js';
import { WorkerPool, workerCount } from './workers/pool.js';
import { SharedCertificateTable } from './workers/shared-certificates.js';
import { registerReleaseApi } from './admin/release-routes.js';
import { Conductor } from './release/conductor.js';
import { ReleaseNotifier } from './release/notify.js';
import { WebhookSender } from './release/webhooks.js';
import { openStore } from './store/open.js';
import { AcmeManager, type ChallengeType } from './tls/acme.js';
import { CertificateTable } from './tls/certificates.js';
import { TicketKeyRotation } from './tls/ticket-keys.js';
import { registerDashboard } from './ui/dashboard.js';
import type { Store } from './store/store.js';
import { AdminServer } from './admin/server.js';
import { registerControlApi } from './admin/control-routes.js';
import { AuditLog } from './control/audit.js';
import { defaultInstanceId, instanceFigures, listInstances, startPublishing } from './observe/instances.js';
import { createMetrics, registerMetricsRoute } from './observe/metrics.js';
import { registerPreviewApi } from './admin/preview-routes.js';
import { registerShadowApi } from './admin/shadow-routes.js';
import { ControlPlane } from './control/plane.js';
import { StatsSampler } from './observe/sampler.js';
import { listenerOrigin, qaListenerIndex, type StatusReport } from './observe/status-report.js';
import type { StatusFeed } from './observe/status-feed.js';
import { SessionTracker } from './control/session-tracker.js';
import { reconcileState, STATE_KEY } from './control/desired-state.js';
import { loadAdminToken, type AdminToken } from './admin/token.js';
import type { HandedSocket } from './socket-activation.js';
import { adoptHandedSessions } from './upgrade/sessions.js';

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
  /** Delivers release notifications (release.notify); its counts are in /metrics. */
  webhooks: WebhookSender;
  stateDir: string;
  logger: Logger;
  /** The listening sockets (proxy and admin listeners), to hand to the next generation at an upgrade. */
  sockets(): HandedSocket[];
  /** Stops accepting, lets requests in flight finish within graceMs, closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /**
   * Started by `dayshift upgrade` from a previous generation: a release it handed over is carried on
   * once this one serves (conductor.takeOver()), not at once.
   */
  nextGeneration?: boolean;
}

export const VERSION = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
  .version as string;

export async function startDayshift(
  loaded: LoadedConfig,
  logger: Logger,
  options: StartOptions = {},
): Promise<Dayshift> {
  const { config } = loaded;
  const stateDir = resolve(loaded.baseDir, config.state_dir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const store: Store = await openStore(config, loaded.baseDir);
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  try {
    const token = await loadAdminToken(config.admin.token_file, stateDir, loaded.baseDir);
    const audit = new AuditLog(stateDir);
    const sessions = new SessionTracker(config.drain.max_sessions);
    if (options.nextGeneration) {
      // The sessions the previous generation saw, so that a drain under way still waits for them.
      const adopted = await adoptHandedSessions(stateDir, sessions).catch((err: unknown) => {
        logger.warn({ err }, 'could not take over the sessions of the previous generation: drains count them from now');
        return 0;
      });
      if (adopted > 0) logger.info({ sessions: adopted }, 'sessions taken over from the previous generation');
    }
    // The config in force, as the control plane holds it (a reload replaces it before applying state).
    const opened: { plane?: ControlPlane } = {};
    const current = () => opened.plane?.loaded ?? loaded;

    // The built-in driver runs Dayshift's own proxy; with Apache or HAProxy, Dayshift is the control
    // plane only and their listeners serve the traffic.
    let proxy: ProxyHandle | undefined;
    let driver: Driver;
    let previewSigner: StickySigner | undefined;
    // Several instances share an etcd store: each publishes its live figures, and status and drain
    // waiting add up everyone's. host-pid plus a random part keeps two instances in one process apart.
    const instanceId = `${defaultInstanceId()}-${randomBytes(3).toString('hex')}`;
    const workers = workerCount(config.workers);
    // With workers, the main's table forwards every certificate and challenge to them.
    const certificates = config.acme
      ? workers > 1
        ? new SharedCertificateTable()
        : new CertificateTable()
      : undefined;
    let closeTickets = () => {};
    if ((config.driver?.type ?? 'builtin') === 'builtin') {
      const stored = await store.get<DesiredState>(STATE_KEY);
      const cookieSecret = config.cookie_secret ?? (await cookieSecretIn(stateDir));
      const state = reconcileState(config, stored?.value);
      // workers >= 2: the proxy runs in worker processes; this process keeps the control plane.
      const started =
        workers > 1
          ? await WorkerPool.start({
              count: workers,
              config: loaded,
              state,
              logger,
              sessions,
              cookieSecret,
              audit,
              ...(certificates instanceof SharedCertificateTable ? { certificates } : {}),
            })
          : await startProxy({
              config: loaded,
              state,
              logger,
              sessions,
              cookieSecret,
              ...(certificates ? { certificates } : {}),
            });
      previewSigner = new StickySigner(cookieSecret);
      proxy = started;
      cleanup.unshift(() => started.close(0));
      driver = new BuiltinDriver(started, current, sessions);
    } else {
      driver = createDriver(config, { baseDir: loaded.baseDir });
      cleanup.unshift(() => driver.close());
    }

    const publisher =
      config.store?.type === 'etcd' && proxy
        ? startPublishing(
            store,
            () =>
              instanceFigures(
                { id: instanceId, version: VERSION },
                proxy.stats(),
                sessions.byMember(Date.now(), current().config.drain.session_idle),
              ),
            {
              // Twice a second: drain waiting on another instance sees this one's requests in flight quickly.
              intervalMs: 500,
              onOutage: (err) =>
                logger.warn(
                  { err },
                  'the store is unreachable: this instance keeps serving with the state it has, but cannot publish its figures or take changes; next message when it is back',
                ),
              onRecovered: ({ ms, failedRounds }) =>
                logger.info(
                  { outageMs: ms, failedRounds },
                  `the store is reachable again after ${formatDuration(ms)}: figures published, changes accepted`,
                ),
            },
          )
        : undefined;
    if (publisher) {
      cleanup.unshift(async () => publisher.stop());
      await publisher.publishNow().catch(() => undefined);
    }
    const peers = publisher ? async () => (await listInstances(store)).filter((i) => i.id !== instanceId) : undefined;

    const plane = await ControlPlane.open({
      loaded,
      store,
      driver,
      audit,
      logger,
      ...(proxy ? { proxy } : {}),
      ...(peers ? { peers } : {}),
      ...(previewSigner ? { previewSigner } : {}),
    });
    opened.plane = plane;
    cleanup.unshift(() => plane.close());
    const acme = certificates && proxy ? startAcme(store, certificates, logger, current, proxy, instanceId) : undefined;
    if (acme) {
      cleanup.unshift(() => acme.close());
      plane.on('reload', () => acme.refresh());
    } else if (proxy) {
      plane.on('reload', (next) => {
        if (next.config.acme)
          logger.warn('acme was added to the configuration: certificates by ACME start at the next start');
      });
    }
    // Session tickets one instance issues resume on the others: the key is shared through the store.
    if (proxy && proxy.addresses().https.length > 0 && config.tls.session_tickets) {
      const listeners = proxy;
      const tickets = new TicketKeyRotation({
        store,
        logger,
        rotationMs: () => current().config.tls.ticket_rotation,
        apply: (key) => listeners.setTicketKeys(key),
      });
      await tickets.start();
      cleanup.unshift(async () => tickets.close());
      closeTickets = () => tickets.close();
    }
    const certificateReport = acme ? () => acme.report() : undefined;
    const statsOf = proxy;
    const sampler = statsOf
      ? new StatsSampler(
          () => statsOf.stats(),
          (key) => splitMemberKey(key)[0],
        )
      : undefined;
    sampler?.start();
    const admin = new AdminServer({ token: token.value, logger, version: VERSION, audit });
    const workerStatus = proxy instanceof WorkerPool ? () => proxy.workerStatus() : undefined;
    const statusFeed = registerControlApi(admin, plane, audit, {
      sampler,
      certificates: certificateReport,
      workers: workerStatus,
    });
    registerPreviewApi(admin, plane);
    registerShadowApi(admin, plane);
    const webhooks = new WebhookSender(logger);
    cleanup.unshift(() => webhooks.close(0));
    registerMetricsRoute(
      admin,
      createMetrics(plane, proxy, proxy ? sessions : undefined, {
        webhooks,
        certificates: certificateReport,
        workers: workerStatus,
      }),
      config.admin.metrics_auth,
      proxy?.refreshStats ? () => proxy.refreshStats!() : undefined,
    );
    // Where QA checks reach the sites: Dayshift's own listener, or the external load balancer's.
    const httpOrigin = () => {
      const index = qaListenerIndex(plane.config);
      const bound = proxy?.addresses().http[index];
      return listenerOrigin(
        bound ? { host: bound.address, port: bound.port } : [plane.config.listen.http ?? []].flat()[index],
      );
    };
    // Links in notifications point at the dashboard as people open it; by default, where the admin API
    // listens (the bound address once known: port 0 picks one).
    const bound: { adminUrl?: string } = {};
    const notifier = new ReleaseNotifier({
      config: () => plane.config,
      dashboardUrl: () => config.admin.public_url ?? bound.adminUrl ?? listenerOrigin(config.admin.listen)!,
      sender: webhooks,
      logger,
    });
    const conductor = await Conductor.open(
      { plane, logger, sampler, httpOrigin, audit, ...(options.nextGeneration ? { deferTakeOver: true } : {}) },
      (c) => notifier.watch(c),
    );
    notifier.baseline(conductor.current());
    cleanup.unshift(() => conductor.close());
    registerReleaseApi(admin, conductor, () => plane.config);
    registerDashboard(admin, { token: token.value, logger, audit });
    const adminAddress = await admin.listen(config.admin.listen.host, config.admin.listen.port).catch((err: Error) => {
      throw new Error(`admin listener: ${err.message}`);
    });
    const adminUrl = listenerOrigin({ host: adminAddress.address, port: adminAddress.port })!;
    bound.adminUrl = adminUrl;
    const pruner = setInterval(() => sessions.prune(Date.now(), current().config.drain.session_idle), 30_000);
    pruner.unref();
    return {
      plane,
      proxy,
      admin,
      adminAddress,
      adminUrl,
      token,
      store,
      audit,
      sessions,
      sampler,
      statusFeed,
      conductor,
      webhooks,
      stateDir,
      logger,
      sockets: () => [...(proxy?.listeningSockets() ?? []), admin.listeningSocket()],
      async close(graceMs = plane.config.timeouts.shutdown) {
        clearInterval(pruner);
        await conductor.close();
        // A last event (the release interrupted by this stop) gets a moment to go out.
        await webhooks.close();
        await acme?.close();
        closeTickets();
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

/** Starts ordering and renewing certificates for the sites with tls.acme, by the challenges the listeners can answer. */
function startAcme(
  store: Store,
  table: CertificateTable,
  logger: Logger,
  loaded: () => LoadedConfig,
  proxy: ProxyHandle,
  instance: string,
): AcmeManager {
  const listeners = proxy.addresses();
  const challenges: ChallengeType[] = [
    ...(listeners.http.length > 0 ? (['http-01'] as const) : []),
    ...(listeners.https.length > 0 ? (['tls-alpn-01'] as const) : []),
  ];
  const manager = new AcmeManager({ store, table, logger, loaded, challenges, instance });
  manager.start();
  return manager;
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
