// The built-in proxy: its listeners (listeners.ts), its members (member-set.ts), and the routing
// snapshot they share, swapped whole by apply(). A request goes listeners.ts → forward.ts (guards,
// member choice, retries; state in exchange.ts) → respond.ts; upgrades go to tunnel.ts.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { LoadedConfig } from '../config/load.js';
import type { DesiredState, MemberKey } from '../model.js';
import { StickySigner } from '../balance/sticky.js';
import type { HandedSocket } from '../socket-activation.js';
import { AccessLog } from './access-log.js';
import type { HealthReport, ProxyHandle, ProxyOptions, ProxyStats, SiteStats } from './handle.js';
import { Forwarder } from './forward.js';
import { Listeners } from './listeners.js';
import { ShadowCopier } from './shadow.js';
import { checkMembersResolve, MemberSet } from './member-set.js';
import { buildSnapshot, loadErrorPages, type SiteCounters, type Snapshot } from './snapshot.js';

export type { ProxyHandle, ProxyOptions } from './handle.js';

/** How often close() looks whether the last requests have finished. */
const CLOSE_POLL_MS = 20;

/** Starts the proxy: members resolved and checked, listeners open. Throws, with nothing left open, on a bad config. */
export async function startProxy(options: ProxyOptions): Promise<ProxyHandle> {
  await checkMembersResolve(options.config.config);
  const proxy = new Proxy(options);
  try {
    await proxy.listeners.open();
  } catch (error) {
    proxy.members.stopChecks();
    throw error;
  }
  options.logger.info(proxy.addresses(), 'proxy listening');
  return proxy;
}

class Proxy implements ProxyHandle {
  readonly members: MemberSet;
  readonly listeners: Listeners;
  private loaded: LoadedConfig;
  private snapshot: Snapshot;
  private accessLog: AccessLog | undefined;
  private readonly forwarder: Forwarder;
  private readonly siteCounters = new Map<string, SiteCounters>();
  /** Copies of live requests to an idle cluster, while a shadow is on (shadow.ts). */
  private readonly shadow: ShadowCopier;
  /** Requests being handled, for close(). */
  private readonly active = { count: 0 };

  constructor(options: ProxyOptions) {
    const { logger, certificates, sessions } = options;
    this.loaded = options.config;
    const config = this.loaded.config;
    const secret = options.cookieSecret ?? config.cookie_secret;
    if (secret === undefined)
      logger.warn(
        'no cookie_secret configured: sticky cookies are signed with a per-process key and do not survive a restart',
      );
    const signer = new StickySigner(secret ?? randomBytes(32).toString('hex'));
    this.accessLog = AccessLog.open(config.access_log.target, config.access_log.format, this.loaded.baseDir);
    this.members = new MemberSet(logger, options.externalHealth);
    this.members.sync(config);
    this.shadow = new ShadowCopier(logger);
    this.snapshot = buildSnapshot(
      this.loaded,
      options.state,
      this.members.runtimes,
      this.siteCounters,
      loadErrorPages(this.loaded),
      this.shadow,
    );
    const snapshot = () => this.snapshot;
    const passive = () => this.members.passive;
    this.forwarder = new Forwarder({
      snapshot,
      signer,
      sessions,
      accessLog: () => this.accessLog,
      logger,
      passive,
      active: this.active,
    });
    const forwarder = this.forwarder;
    this.listeners = new Listeners(
      {
        logger,
        snapshot,
        // ACME http-01 challenges are answered before routing (one size check per request while none is pending).
        request: certificates
          ? (req, res, expectContinue) =>
              certificates.answerHttp(req, res) || forwarder.handle(req, res, expectContinue)
          : (req, res, expectContinue) => forwarder.handle(req, res, expectContinue),
        tunnels: { snapshot, signer, sessions, logger, passive, accessLog: () => this.accessLog },
        certificates,
      },
      this.loaded,
    );
  }

  apply(config: LoadedConfig, state: DesiredState): void {
    const next = config.config;
    // Everything that reads files (and can throw) runs before anything changes: a failed apply()
    // leaves the running snapshot as it was.
    const commitListeners = this.listeners.prepare(config);
    const errorPages = loadErrorPages(config);
    this.members.sync(next);
    const built = buildSnapshot(config, state, this.members.runtimes, this.siteCounters, errorPages, this.shadow);
    const log = this.loaded.config.access_log;
    if (next.access_log.target !== log.target || next.access_log.format !== log.format) {
      const old = this.accessLog;
      this.accessLog = AccessLog.open(next.access_log.target, next.access_log.format, config.baseDir);
      void old?.close();
    }
    commitListeners();
    this.loaded = config;
    this.snapshot = built;
    this.forwarder.held.review();
  }

  stats(): ProxyStats {
    const now = Date.now();
    return {
      members: [...this.members.runtimes.values()].map((m) => m.stats(now)),
      sites: Object.keys(this.loaded.config.sites).map((name) => ({
        name,
        responses: [...(this.siteCounters.get(name)?.responses ?? [0, 0, 0, 0, 0])] as SiteStats['responses'],
      })),
      shadow: this.shadow.read(),
    };
  }

  async closeTunnels(keys: MemberKey[], options: { batch: number; intervalMs: number }): Promise<number> {
    const sockets = keys.flatMap((k) => [...(this.members.runtimes.get(k)?.tunnels ?? [])]);
    const batch = Math.max(1, options.batch);
    let closed = 0;
    for (let i = 0; i < sockets.length; i += batch) {
      if (i > 0) await new Promise((r) => setTimeout(r, options.intervalMs));
      for (const socket of sockets.slice(i, i + batch)) {
        if (socket.destroyed) continue;
        socket.destroy();
        closed++;
      }
    }
    return closed;
  }

  setHealth(reports: HealthReport[]): void {
    this.members.setHealth(reports);
  }

  setTicketKeys(keys: Buffer): void {
    this.listeners.setTicketKeys(keys);
  }

  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    return this.listeners.addresses();
  }

  listeningSockets(): HandedSocket[] {
    return this.listeners.listeningSockets();
  }

  async close(graceMs: number): Promise<void> {
    const listeners = this.listeners;
    const closed = listeners.stopAccepting();
    this.forwarder.held.rejectAll();
    this.shadow.close();
    const deadline = Date.now() + graceMs;
    // Lane and TLS connections close themselves: at once when idle, after their answer when busy or new.
    while ((this.active.count > 0 || listeners.connectionsOpen) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, CLOSE_POLL_MS));
      listeners.closeIdle();
    }
    listeners.closeAll();
    this.members.cutTunnels();
    this.members.stopChecks();
    await closed;
    await this.members.close();
    await this.accessLog?.close();
  }
}
