// startProxy: listeners, the snapshot swap, member runtimes and their transports, health checkers,
// held (paused) requests, tunnels, stats and graceful close. The request path itself is in forward.ts.
import { constants as cryptoConstants, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { lookup } from 'node:dns/promises';
import { isIP, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { resolve } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import type { LoadedConfig } from '../config/load.js';
import { siteTlsFiles, type DayshiftConfig, type ListenerConfig, type TlsSettings } from '../config/schema.js';
import { memberKey, type MemberKey, type DesiredState, memberId } from '../model.js';
import { CertificateFileWatcher, type WatchedFiles } from '../tls/file-watch.js';
import { HealthChecker, healthCheckFor } from '../balance/health.js';
import { MemberRuntime, type PassivePolicy } from '../balance/member.js';
import { StickySigner } from '../balance/sticky.js';
import { listenOn, listeningFd } from '../socket-activation.js';
import { AccessLog } from './access-log.js';
import type { ProxyHandle, ProxyOptions, ProxyStats } from './handle.js';
import { Forwarder } from './forward.js';
import { buildSnapshot, loadErrorPages, type SiteCounters, type SiteSnapshot, type Snapshot } from './snapshot.js';
import { createTransport, type TransportSettings } from './transport-factory.js';
import { Lane, SWEEP_MS, type LaneHandler, type LaneLimits, type LaneRequest, type LaneResponse } from './lane.js';
import { clientErrorAnswer, closeAfterFlush } from './closing.js';
import { VERSIONLESS_ANSWER, versionless } from './request-line.js';
import { handleUpgrade, refuseConnect } from './tunnel.js';
import { TlsClosing } from './tls-closing.js';
import { acceptProxyProtocol, adoptParentAddresses, type ProxyAcceptor } from './proxy-accept.js';
import { messageOf } from '../errors.js';

export type { ProxyHandle, ProxyOptions } from './handle.js';

interface Held {
  site: string;
  resume: () => void;
  reject: () => void;
}

function addressList(value: DayshiftConfig['listen']['http']): ListenerConfig[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function transportSettings(config: DayshiftConfig): TransportSettings {
  return {
    connectTimeoutMs: config.timeouts.connect,
    firstByteTimeoutMs: config.timeouts.first_byte,
    idleTimeoutMs: config.timeouts.idle,
    responseHeadBytes: config.limits.response_head,
    poolIdle: config.limits.pool_idle,
    poolMax: config.limits.pool_max,
    queueMax: config.limits.queue,
    queueTimeoutMs: config.timeouts.queue ?? config.timeouts.connect,
  };
}

/** SNI certificates: exact host → context, `*.x` → context by suffix; and each site's, to replace it. */
interface TlsContexts {
  exact: Map<string, SecureContext>;
  wildcard: Map<string, SecureContext>;
  bySite: Map<string, SecureContext>;
}

/** Reads a certificate or key file, with an error that names the config key and the file. */
function readPem(loaded: LoadedConfig, file: string, key: string): Buffer {
  const path = resolve(loaded.baseDir, file);
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${key}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`, {
      cause: error,
    });
  }
}

function secureContext(
  loaded: LoadedConfig,
  pair: { cert: string; key: string },
  where: string,
): { cert: Buffer; key: Buffer } {
  const material = {
    cert: readPem(loaded, pair.cert, `${where}.cert`),
    key: readPem(loaded, pair.key, `${where}.key`),
  };
  try {
    tls.createSecureContext(material);
  } catch (error) {
    throw new Error(`${where}: certificate or key not usable: ${messageOf(error)}`, { cause: error });
  }
  return material;
}

/** Fails with a clear message when a member's host name does not resolve. */
async function checkMembersResolve(config: DayshiftConfig): Promise<void> {
  const problems: string[] = [];
  await Promise.all(
    Object.entries(config.clusters).flatMap(([cluster, c]) =>
      c.members.map(async (m, i) => {
        const host = new URL(m.url).hostname.replace(/^\[|\]$/g, '');
        if (isIP(host)) return;
        try {
          await lookup(host);
        } catch (error) {
          problems.push(
            `clusters.${cluster}.members[${i}]: cannot resolve ${host} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
          );
        }
      }),
    ),
  );
  if (problems.length > 0) throw new Error(problems.join('\n'));
}

function loadTls(loaded: LoadedConfig): TlsContexts {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const bySite = new Map<string, SecureContext>();
  for (const [name, site] of Object.entries(loaded.config.sites)) {
    const files = siteTlsFiles(site);
    if (!files) continue;
    const context = tls.createSecureContext(secureContext(loaded, files, `sites.${name}.tls`));
    bySite.set(name, context);
    for (const host of site.hosts) {
      const h = host.toLowerCase();
      if (h.startsWith('*.')) wildcard.set(h.slice(1), context);
      else if (h !== '*') exact.set(h, context);
    }
  }
  return { exact, wildcard, bySite };
}

/** A site's certificate files changed: its new context replaces the old one for all its hosts. */
function replaceSiteContext(contexts: TlsContexts, site: string, next: SecureContext): void {
  const old = contexts.bySite.get(site);
  contexts.bySite.set(site, next);
  for (const map of [contexts.exact, contexts.wildcard])
    for (const [host, context] of map) if (context === old) map.set(host, next);
}

/** The certificate files of a config, as the file watcher follows them. */
function certificateFiles(
  loaded: LoadedConfig,
): { where: string; site?: string; pair: { cert: string; key: string } }[] {
  const listenTls = loaded.config.listen.tls;
  return [
    ...(listenTls ? [{ where: 'listen.tls', pair: listenTls }] : []),
    ...Object.entries(loaded.config.sites).flatMap(([site, config]) => {
      const pair = siteTlsFiles(config);
      return pair ? [{ where: `sites.${site}.tls`, site, pair }] : [];
    }),
  ];
}

/**
 * The https listeners' protocol settings (config `tls`). sessionIdContext is fixed so that a session
 * from one instance resumes on another (Node's default is a hash of the command line).
 */
function tlsServerOptions(settings: TlsSettings): tls.SecureContextOptions {
  return {
    minVersion: settings.min_version,
    ...(settings.ciphers ? { ciphers: settings.ciphers } : {}),
    ...(settings.ecdh_curve ? { ecdhCurve: settings.ecdh_curve } : {}),
    ...(settings.session_tickets ? {} : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
    sessionIdContext: 'dayshift',
  };
}

/** Application protocols the https listener speaks, for ALPN. */
const SERVED_PROTOCOLS = ['http/1.1'] as const;

/** Requests a paused proxy holds at most; more are answered 503 at once. */
const MAX_HELD = 10_000;

export async function startProxy(options: ProxyOptions): Promise<ProxyHandle> {
  const logger = options.logger;
  let loaded = options.config;
  const members = new Map<MemberKey, MemberRuntime>();
  const checkers = new Map<MemberKey, HealthChecker>();
  const siteCounters = new Map<string, SiteCounters>();
  const held: Held[] = [];
  let holdTimer: NodeJS.Timeout | undefined;
  const active = { count: 0 };
  const secret = options.cookieSecret ?? loaded.config.cookie_secret;
  if (secret === undefined)
    logger.warn(
      'no cookie_secret configured: sticky cookies are signed with a per-process key and do not survive a restart',
    );
  const signer = new StickySigner(secret ?? randomBytes(32).toString('hex'));
  let accessLog = AccessLog.open(loaded.config.access_log.target, loaded.config.access_log.format, loaded.baseDir);
  let passive: PassivePolicy = { failures: 0, ejectionMs: 0, maxEjectionMs: 0 };
  let tlsContexts = loadTls(loaded);

  const onHealth = (member: MemberRuntime, up: boolean, reason: string | undefined) => {
    if (up) logger.info({ member: member.key }, 'member is up');
    else logger.warn({ member: member.key, reason }, 'member is down');
  };

  /** Brings member runtimes, transports and health checkers in line with a config. */
  const syncMembers = (config: DayshiftConfig) => {
    const settings = transportSettings(config);
    const wanted = new Set<MemberKey>();
    for (const [cluster, c] of Object.entries(config.clusters)) {
      c.members.forEach((m, i) => {
        const key = memberKey(cluster, memberId(m.route, i));
        wanted.add(key);
        let runtime = members.get(key);
        if (runtime && (runtime.config.url !== m.url || JSON.stringify(runtime.config) !== JSON.stringify(m))) {
          // A changed member gets a fresh runtime; requests in flight finish on the old transport.
          const old = runtime;
          setTimeout(() => void old.transport.close(), config.timeouts.shutdown).unref();
          runtime = undefined;
        }
        if (!runtime) {
          runtime = new MemberRuntime(key, cluster, memberId(m.route, i), m, createTransport(m, settings));
          members.set(key, runtime);
          checkers.get(key)?.stop();
          checkers.delete(key);
        }
        const check = healthCheckFor(config, cluster, i);
        const checker = checkers.get(key);
        if (!checker || JSON.stringify(checker.check) !== JSON.stringify(check)) {
          checker?.stop();
          const next = new HealthChecker(runtime, check, onHealth);
          checkers.set(key, next);
          next.start();
        }
      });
    }
    for (const [key, runtime] of members) {
      if (wanted.has(key)) continue;
      members.delete(key);
      checkers.get(key)?.stop();
      checkers.delete(key);
      setTimeout(() => void runtime.transport.close(), config.timeouts.shutdown).unref();
    }
    passive = {
      failures: config.passive.failures,
      ejectionMs: config.passive.ejection,
      maxEjectionMs: config.passive.max_ejection,
    };
  };

  await checkMembersResolve(loaded.config);
  const pages = loadErrorPages(loaded);
  syncMembers(loaded.config);
  let snapshot: Snapshot = buildSnapshot(loaded, options.state, members, siteCounters, pages);

  /** When the hold timer fires next (Infinity: not armed). */
  let holdAt = Infinity;
  const armHold = (at: number) => {
    if (at >= holdAt) return;
    if (holdTimer) clearTimeout(holdTimer);
    holdAt = at;
    holdTimer = setTimeout(reviewHeld, Math.max(1, at - Date.now()));
  };

  /** Releases or rejects held requests whose site is no longer paused, and re-arms the timer. */
  const reviewHeld = () => {
    if (holdTimer) clearTimeout(holdTimer);
    holdTimer = undefined;
    holdAt = Infinity;
    const now = Date.now();
    const sites = sitesByName(snapshot);
    let next = Infinity;
    const waiting: Held[] = [];
    for (const h of held.splice(0)) {
      const pause = sites.get(h.site)?.pause;
      if (pause && pause.until > now) {
        next = Math.min(next, pause.until);
        waiting.push(h);
      } else if (pause && pause.then === 'reject') h.reject();
      else h.resume();
    }
    held.push(...waiting);
    if (next !== Infinity) armHold(next);
  };

  const forwarder = new Forwarder({
    snapshot: () => snapshot,
    signer,
    sessions: options.sessions,
    get accessLog() {
      return accessLog;
    },
    logger,
    passive: () => passive,
    active,
    hold(site, until, resumeHeld, rejectHeld) {
      // Bounded: past MAX_HELD, a paused site answers 503 at once rather than queueing without limit.
      if (held.length >= MAX_HELD) return rejectHeld();
      held.push({ site, resume: resumeHeld, reject: rejectHeld });
      armHold(until);
    },
  });
  // ACME http-01 challenges are answered before routing (one size check per request while none is pending).
  const certificates = options.certificates;
  const handleRequest = certificates
    ? (req: http.IncomingMessage | LaneRequest, res: http.ServerResponse | LaneResponse, expectContinue: boolean) =>
        certificates.answerHttp(req, res) || forwarder.handle(req, res, expectContinue)
    : (req: http.IncomingMessage | LaneRequest, res: http.ServerResponse | LaneResponse, expectContinue: boolean) =>
        forwarder.handle(req, res, expectContinue);
  const tunnelContext = {
    snapshot: () => snapshot,
    signer,
    sessions: options.sessions,
    logger,
    passive: () => passive,
  };

  const serverOptions = (config: DayshiftConfig): http.ServerOptions => ({
    maxHeaderSize: config.limits.header_size,
    requireHostHeader: true,
    keepAliveTimeout: config.timeouts.client_keepalive,
    requestTimeout: 0,
    headersTimeout: headersTimeout(config),
    // How often Node looks for heads past headersTimeout (30 s by default, which would add up to 30 s).
    connectionsCheckingInterval: SWEEP_MS,
  });

  /** Each connection's latest response on Node's server: a refusal waits for it (pipelining order). */
  const lastResponse = new WeakMap<Duplex, http.ServerResponse>();
  /**
   * Answers a request Node's parser refused (400, 408, 431), and closes. A request read whole before it
   * is answered first (pipelining order); one whose body was being read when the parser failed cannot
   * complete, so it is abandoned (cut, if its answer had begun).
   */
  const refuseClient = (socket: Duplex, answer: string) => {
    // Already answered and closing: what the client sends meanwhile (which Node's spent parser refuses
    // again) is dropped until the close.
    if (socket.writableEnded) return;
    const previous = lastResponse.get(socket);
    if (previous && !previous.writableFinished && !previous.destroyed) {
      if (previous.req.complete) {
        previous.once('close', () => refuseClient(socket, answer));
        return;
      }
      if (previous.headersSent) {
        socket.destroy();
        return;
      }
    }
    if (!socket.writable) socket.destroy();
    else closeAfterFlush(socket, answer, loaded.config.timeouts.idle);
  };

  const wire = (server: http.Server) => {
    server.maxHeadersCount = loaded.config.limits.header_count + 1;
    server.timeout = loaded.config.timeouts.idle;
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      lastResponse.set(req.socket, res);
      handleRequest(req, res, false);
    });
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      lastResponse.set(req.socket, res);
      handleRequest(req, res, true);
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(tunnelContext, req, socket, head),
    );
    server.on('connect', (_req: http.IncomingMessage, socket: Duplex) =>
      refuseConnect(socket, loaded.config.timeouts.idle),
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
      refuseClient(socket, clientErrorAnswer(error)),
    );
  };

  /**
   * On a TLS listener (no lane in front of Node's parser): an HTTP/0.9 request line at the start of a
   * connection is refused at once rather than left waiting for header lines (request-line.ts).
   */
  const watchRequestLine = (socket: Duplex) => {
    let seen: Buffer | undefined;
    const onData = (data: Buffer) => {
      seen = seen ? Buffer.concat([seen, data]) : data;
      const missing = versionless(seen);
      if (missing === undefined && seen.length <= loaded.config.limits.header_size) return;
      socket.off('data', onData);
      if (missing) closeAfterFlush(socket, VERSIONLESS_ANSWER, loaded.config.timeouts.idle);
    };
    socket.on('data', onData);
  };

  const httpServers: http.Server[] = [];
  const lanes: Lane[] = [];
  let laneLimits = laneLimitsOf(loaded.config);
  const laneHandler: LaneHandler = {
    request: (req, res) => handleRequest(req, res, false),
    limits: () => laneLimits,
  };
  const httpsServers: https.Server[] = [];
  const tlsClosings: TlsClosing[] = [];
  const acceptors: ProxyAcceptor[] = [];
  /** On a listener with proxy_protocol: the PROXY header comes first, before the lane or TLS (proxy-accept.ts). */
  const proxyProtocol = (server: http.Server, address: ListenerConfig) => {
    if (!('proxy_protocol' in address) || !address.proxy_protocol) return;
    acceptors.push(
      acceptProxyProtocol(server, {
        trusted: () => snapshot.trusted,
        headMs: () => headersTimeout(loaded.config),
        maxBytes: () => loaded.config.limits.header_size,
        refused: (peer, reason) =>
          logger.debug(
            { peer, reason, listener: `${address.host}:${address.port}` },
            'PROXY protocol: connection refused',
          ),
      }),
    );
    if (server instanceof https.Server) server.prependListener('secureConnection', adoptParentAddresses);
  };
  /** The shared session ticket key (ticket-keys.ts), kept to set again when a listener's context is rebuilt. */
  let ticketKeys: Buffer | undefined;
  /** The default certificate (listen.tls) and the protocol settings, as the https listeners have them. */
  const defaultContext = (config: LoadedConfig) => ({
    ...tlsServerOptions(config.config.tls),
    ...(config.config.listen.tls ? secureContext(config, config.config.listen.tls, 'listen.tls') : {}),
  });
  const setDefaultContext = (options: tls.SecureContextOptions) => {
    for (const server of httpsServers) {
      server.setSecureContext(options);
      if (ticketKeys) server.setTicketKeys(ticketKeys);
    }
  };
  const fileWatcher = new CertificateFileWatcher(logger);
  const watchFiles = (config: LoadedConfig) =>
    fileWatcher.watch(
      certificateFiles(config).map(({ where, site, pair }): WatchedFiles => ({
        where,
        paths: [resolve(config.baseDir, pair.cert), resolve(config.baseDir, pair.key)],
        reload:
          site === undefined
            ? () => setDefaultContext(defaultContext(loaded))
            : () => replaceSiteContext(tlsContexts, site, tls.createSecureContext(secureContext(loaded, pair, where))),
      })),
    );
  const closeServers = () => {
    for (const s of [...httpServers, ...httpsServers]) s.close();
    fileWatcher.close();
  };
  try {
    for (const address of addressList(loaded.config.listen.http)) {
      const server = http.createServer(serverOptions(loaded.config));
      wire(server);
      lanes.push(new Lane(server, laneHandler));
      proxyProtocol(server, address);
      httpServers.push(server);
      await listenOn(server, address, 'http');
    }
    const httpsAddresses = addressList(loaded.config.listen.https);
    if (httpsAddresses.length > 0) {
      const defaults = defaultContext(loaded);
      for (const address of httpsAddresses) {
        const server = https.createServer({
          ...serverOptions(loaded.config),
          ...defaults,
          // Node calls both with the TLS socket as `this`, ALPN first: tls-alpn-01 marks the socket there.
          SNICallback(this: tls.TLSSocket, servername, callback) {
            const name = servername.toLowerCase();
            const dot = name.indexOf('.');
            const context =
              certificates?.context(this, name) ??
              tlsContexts.exact.get(name) ??
              (dot > 0 ? tlsContexts.wildcard.get(name.slice(dot)) : undefined);
            callback(null, context);
          },
          ...(certificates
            ? {
                ALPNCallback(
                  this: tls.TLSSocket,
                  { servername, protocols }: { servername: string; protocols: string[] },
                ) {
                  return certificates.selectProtocol(this, servername, protocols, SERVED_PROTOCOLS);
                },
              }
            : {}),
        });
        wire(server);
        tlsClosings.push(new TlsClosing(server, () => laneLimits));
        server.on('secureConnection', watchRequestLine);
        proxyProtocol(server, address);
        httpsServers.push(server);
        await listenOn(server, address, 'https');
      }
    }
  } catch (error) {
    closeServers();
    for (const c of checkers.values()) c.stop();
    throw error;
  }
  if (httpsServers.length > 0) watchFiles(loaded);
  logger.info(
    { http: httpServers.map((s) => s.address()), https: httpsServers.map((s) => s.address()) },
    'proxy listening',
  );

  const handle: ProxyHandle = {
    apply(config: LoadedConfig, state: DesiredState): void {
      const next = config.config;
      // Everything that reads files (and can throw) runs before anything changes: a failed apply()
      // leaves the running snapshot as it was.
      const contexts = next === loaded.config ? tlsContexts : loadTls(config);
      const listenerContext = httpsServers.length > 0 && next !== loaded.config ? defaultContext(config) : undefined;
      const errorPages = loadErrorPages(config);
      syncMembers(next);
      const built = buildSnapshot(config, state, members, siteCounters, errorPages);
      if (
        config.config.access_log.target !== loaded.config.access_log.target ||
        config.config.access_log.format !== loaded.config.access_log.format
      ) {
        const old = accessLog;
        accessLog = AccessLog.open(next.access_log.target, next.access_log.format, config.baseDir);
        void old?.close();
      }
      if (
        JSON.stringify({ ...next.listen, tls: undefined }) !==
        JSON.stringify({ ...loaded.config.listen, tls: undefined })
      )
        logger.warn('listen addresses changed: they take effect at the next start');
      loaded = config;
      laneLimits = laneLimitsOf(next);
      tlsContexts = contexts;
      if (listenerContext) {
        setDefaultContext(listenerContext);
        watchFiles(config);
      }
      snapshot = built;
      reviewHeld();
    },

    stats(): ProxyStats {
      const now = Date.now();
      return {
        members: [...members.values()].map((m) => m.stats(now)),
        sites: Object.keys(loaded.config.sites).map((name) => ({
          name,
          responses: [
            ...(siteCounters.get(name)?.responses ?? [0, 0, 0, 0, 0]),
          ] as ProxyStats['sites'][number]['responses'],
        })),
      };
    },

    async closeTunnels(keys: MemberKey[], options: { batch: number; intervalMs: number }): Promise<number> {
      const sockets = keys.flatMap((k) => [...(members.get(k)?.tunnels ?? [])]);
      let closed = 0;
      for (let i = 0; i < sockets.length; i += Math.max(1, options.batch)) {
        if (i > 0) await new Promise((r) => setTimeout(r, options.intervalMs));
        for (const socket of sockets.slice(i, i + Math.max(1, options.batch))) {
          if (socket.destroyed) continue;
          socket.destroy();
          closed++;
        }
      }
      return closed;
    },

    setTicketKeys(keys: Buffer): void {
      ticketKeys = keys;
      for (const server of httpsServers) server.setTicketKeys(keys);
    },

    addresses() {
      return {
        http: httpServers.map((s) => s.address() as AddressInfo),
        https: httpsServers.map((s) => s.address() as AddressInfo),
      };
    },

    listeningSockets() {
      return [
        ...httpServers.map((s) => ({ name: 'http' as const, fd: listeningFd(s) })),
        ...httpsServers.map((s) => ({ name: 'https' as const, fd: listeningFd(s) })),
      ];
    },

    async close(graceMs: number): Promise<void> {
      const servers = [...httpServers, ...httpsServers];
      const closed = [
        ...httpServers.map((s) => new Promise<void>((r) => s.close(() => r()))),
        ...tlsClosings.map((c) => new Promise<void>((r) => c.close(r))),
      ];
      for (const s of httpServers) s.closeIdleConnections();
      for (const lane of lanes) lane.closeIdle();
      fileWatcher.close();
      for (const h of held.splice(0)) h.reject();
      if (holdTimer) clearTimeout(holdTimer);
      const deadline = Date.now() + graceMs;
      // Lane and TLS connections close themselves: at once when idle, after their answer when busy or new.
      const open = () => lanes.some((lane) => lane.size > 0) || tlsClosings.some((c) => c.size > 0);
      while ((active.count > 0 || open()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        for (const s of httpServers) s.closeIdleConnections();
        for (const c of tlsClosings) c.sweep(Date.now());
      }
      for (const s of servers) s.closeAllConnections();
      for (const lane of lanes) lane.closeAll();
      for (const acceptor of acceptors) acceptor.closeAll();
      for (const m of members.values()) for (const t of m.tunnels) t.destroy();
      for (const c of checkers.values()) c.stop();
      await Promise.all(closed);
      await Promise.all([...members.values()].map((m) => m.transport.close().catch(() => undefined)));
      await accessLog?.close();
    },
  };
  return handle;
}

function laneLimitsOf(config: DayshiftConfig): LaneLimits {
  return {
    headerBytes: config.limits.header_size,
    headerCount: config.limits.header_count,
    keepAliveMs: config.timeouts.client_keepalive,
    headersMs: headersTimeout(config),
    idleMs: config.timeouts.idle,
  };
}

/** How long a client may take to send a request's head (Node's headersTimeout, and the lane's). */
function headersTimeout(config: DayshiftConfig): number {
  return Math.max(1000, Math.min(60_000, config.timeouts.idle));
}

function sitesByName(snapshot: Snapshot): Map<string, SiteSnapshot> {
  const sites = new Map<string, SiteSnapshot>();
  for (const site of [
    ...snapshot.exact.values(),
    ...snapshot.wildcard.values(),
    ...(snapshot.fallback ? [snapshot.fallback] : []),
  ])
    sites.set(site.name, site);
  return sites;
}
