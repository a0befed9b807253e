// The proxy's listening side: http listeners and https listeners (certificates by SNI; ALPN chooses
// HTTP/2 (h2.ts) or HTTP/1.1), both with the fast lane in front of Node's parser (lane.ts); the PROXY
// protocol where configured, and what is refused before a request exists (a head Node's parser rejects,
// CONNECT). Every request read goes to `request`; every upgrade to the tunnels. Closing is in stages,
// driven by the proxy's close().
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { DayshiftConfig, ListenerConfig } from '../config/schema.js';
import { listenOn, listeningFd, type HandedSocket } from '../socket-activation.js';
import type { CertificateTable } from '../tls/certificates.js';
import { certificateFiles, certificateMaterial, listenerContext, SiteContexts } from '../tls/contexts.js';
import { CertificateFileWatcher, type WatchedFiles } from '../tls/file-watch.js';
import { clientErrorAnswer, closeAfterFlush } from './closing.js';
import { Http2Front, type H2Limits, type H2Request, type H2Response } from './h2.js';
import { Lane, SWEEP_MS, type LaneHandler, type LaneLimits, type LaneRequest, type LaneResponse } from './lane.js';
import { acceptProxyProtocol, adoptParentAddresses, type ProxyAcceptor } from './proxy-accept.js';
import type { Snapshot } from './snapshot.js';
import { handleH2Upgrade } from './h2-tunnel.js';
import { handleUpgrade, refuseConnect, type TunnelContext } from './tunnel.js';

/** A request as a listener hands it on: Node's server, the lane or HTTP/2 read it; 100-continue still owed or not. */
export type RequestHandler = (
  req: http.IncomingMessage | LaneRequest | H2Request,
  res: http.ServerResponse | LaneResponse | H2Response,
  expectContinue: boolean,
) => void;

export interface ListenerContext {
  logger: Logger;
  snapshot(): Snapshot;
  request: RequestHandler;
  tunnels: TunnelContext;
  /** ACME: certificates by SNI and tls-alpn-01 answered in the handshake. */
  certificates: CertificateTable | undefined;
}

/** Application protocols the https listeners speak, by preference, for ALPN. */
function servedProtocols(config: DayshiftConfig): string[] {
  return config.http2.enabled ? ['h2', 'http/1.1'] : ['http/1.1'];
}

function addressList(value: DayshiftConfig['listen']['http']): ListenerConfig[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** How long a client may take to send a request's head (Node's headersTimeout, and the lane's). */
function headersTimeout(config: DayshiftConfig): number {
  return Math.max(1000, Math.min(60_000, config.timeouts.idle));
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

function h2LimitsOf(config: DayshiftConfig): H2Limits {
  return {
    maxConcurrentStreams: config.http2.max_concurrent_streams,
    windowSize: config.http2.window_size,
    maxResets: config.http2.max_resets,
    headerBytes: config.limits.header_size,
    headerCount: config.limits.header_count,
    keepAliveMs: config.timeouts.client_keepalive,
    idleMs: config.timeouts.idle,
    websocket: config.http2.websocket,
  };
}

function serverOptions(config: DayshiftConfig): http.ServerOptions {
  return {
    maxHeaderSize: config.limits.header_size,
    requireHostHeader: true,
    keepAliveTimeout: config.timeouts.client_keepalive,
    requestTimeout: 0,
    headersTimeout: headersTimeout(config),
    // How often Node looks for heads past headersTimeout (30 s by default, which would add up to 30 s).
    connectionsCheckingInterval: SWEEP_MS,
  };
}

export class Listeners {
  private readonly http: http.Server[] = [];
  private readonly https: https.Server[] = [];
  private readonly lanes: Lane[] = [];
  /** HTTP/2 connections of the https listeners, when http2 is enabled. */
  private h2: Http2Front | undefined;
  private readonly acceptors: ProxyAcceptor[] = [];
  private readonly fileWatcher: CertificateFileWatcher;
  private siteContexts: SiteContexts;
  private laneLimits: LaneLimits;
  private h2Limits: H2Limits;
  /** The shared session ticket key (ticket-keys.ts), kept to set again when a listener's context is rebuilt. */
  private ticketKeys: Buffer | undefined;
  /** Each connection's latest response on Node's server: a refusal waits for it (pipelining order). */
  private readonly lastResponse = new WeakMap<Duplex, http.ServerResponse>();

  /** Reads the certificates (throws on a bad one); open() then listens. */
  constructor(
    private readonly ctx: ListenerContext,
    private loaded: LoadedConfig,
  ) {
    this.fileWatcher = new CertificateFileWatcher(ctx.logger);
    this.siteContexts = new SiteContexts(loaded);
    this.laneLimits = laneLimitsOf(loaded.config);
    this.h2Limits = h2LimitsOf(loaded.config);
  }

  /** Listens on every configured address (or the socket inherited for it); on failure, closes what opened. */
  async open(): Promise<void> {
    const config = this.loaded.config;
    const laneHandler: LaneHandler = {
      request: (req, res) => this.ctx.request(req, res, false),
      limits: () => this.laneLimits,
    };
    try {
      for (const address of addressList(config.listen.http)) {
        const server = http.createServer(serverOptions(config));
        this.wire(server);
        this.lanes.push(new Lane(server, laneHandler));
        this.acceptProxyProtocol(server, address);
        this.http.push(server);
        await listenOn(server, address, 'http');
      }
      const httpsAddresses = addressList(config.listen.https);
      const defaults = httpsAddresses.length > 0 ? listenerContext(this.loaded) : undefined;
      const h2 = httpsAddresses.length > 0 && config.http2.enabled ? this.http2Front() : undefined;
      for (const address of httpsAddresses) {
        const server = this.httpsServer(defaults!);
        this.wire(server);
        this.lanes.push(new Lane(server, laneHandler, h2 && ((socket) => h2.take(socket))));
        this.acceptProxyProtocol(server, address);
        this.https.push(server);
        await listenOn(server, address, 'https');
      }
    } catch (error) {
      for (const s of this.servers()) s.close();
      throw error;
    }
    if (this.https.length > 0) this.watchFiles(this.loaded);
  }

  /**
   * Reads what a new config needs (certificates: may throw) and returns what puts it in force, so that a
   * failed reload changes nothing.
   */
  prepare(loaded: LoadedConfig): () => void {
    if (loaded.config === this.loaded.config) return () => {};
    const contexts = new SiteContexts(loaded);
    const defaults = this.https.length > 0 ? listenerContext(loaded) : undefined;
    return () => {
      const before = this.loaded.config.listen;
      if (JSON.stringify({ ...loaded.config.listen, tls: undefined }) !== JSON.stringify({ ...before, tls: undefined }))
        this.ctx.logger.warn('listen addresses changed: they take effect at the next start');
      this.loaded = loaded;
      this.laneLimits = laneLimitsOf(loaded.config);
      this.h2Limits = h2LimitsOf(loaded.config);
      this.siteContexts = contexts;
      if (defaults) {
        this.setDefaultContext(defaults);
        this.watchFiles(loaded);
      }
    };
  }

  setTicketKeys(keys: Buffer): void {
    this.ticketKeys = keys;
    for (const server of this.https) server.setTicketKeys(keys);
  }

  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    return {
      http: this.http.map((s) => s.address() as AddressInfo),
      https: this.https.map((s) => s.address() as AddressInfo),
    };
  }

  /** The listening sockets, to hand to the next generation at an upgrade. */
  listeningSockets(): HandedSocket[] {
    return [
      ...this.http.map((s) => ({ name: 'http' as const, fd: listeningFd(s) })),
      ...this.https.map((s) => ({ name: 'https' as const, fd: listeningFd(s) })),
    ];
  }

  /**
   * Closing, first stage: no new connections; idle ones close at once, the others after their answer
   * (lane.ts), HTTP/2 ones after a GOAWAY once their streams are done (h2.ts). Resolves when every
   * listener has closed its last connection.
   */
  stopAccepting(): Promise<void> {
    // Node's close() destroys only the idle connections its own server holds (handed off by the lane);
    // the lane's, among them those whose first request is still on its way, close by themselves.
    const closed = Promise.all(this.servers().map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.fileWatcher.close();
    for (const lane of this.lanes) lane.closeIdle();
    this.h2?.closeIdle();
    this.closeIdle();
    return closed.then(() => undefined);
  }

  /**
   * Closes the connections that have answered their last request. The lane's and HTTP/2's close
   * themselves; Node's (a request with a body, an HTTP/1.0 one) must be looked at again until the last
   * one is done.
   */
  closeIdle(): void {
    for (const s of this.servers()) s.closeIdleConnections();
  }

  /** Whether a lane or HTTP/2 connection is still open (Node's are counted by the requests they carry). */
  get connectionsOpen(): boolean {
    return this.lanes.some((lane) => lane.size > 0) || (this.h2 !== undefined && this.h2.size > 0);
  }

  /** Closing, last stage: every connection still open is cut. */
  closeAll(): void {
    for (const s of this.servers()) s.closeAllConnections();
    for (const lane of this.lanes) lane.closeAll();
    this.h2?.closeAll();
    for (const acceptor of this.acceptors) acceptor.closeAll();
  }

  private servers(): http.Server[] {
    return [...this.http, ...this.https];
  }

  private http2Front(): Http2Front {
    this.h2 = new Http2Front(
      (req, res, expectContinue) => this.ctx.request(req, res, expectContinue),
      (req, res, stream) => handleH2Upgrade(this.ctx.tunnels, req, res, stream),
      () => this.h2Limits,
      this.ctx.logger,
      SWEEP_MS,
    );
    return this.h2;
  }

  private httpsServer(defaults: tls.SecureContextOptions): https.Server {
    const { certificates } = this.ctx;
    const contexts = () => this.siteContexts;
    const served = servedProtocols(this.loaded.config);
    return https.createServer({
      ...serverOptions(this.loaded.config),
      ...defaults,
      // Node calls both with the TLS socket as `this`, ALPN first: tls-alpn-01 marks the socket there.
      SNICallback(this: tls.TLSSocket, servername, callback) {
        const name = servername.toLowerCase();
        callback(null, certificates?.context(this, name) ?? contexts().lookup(name));
      },
      ...(certificates
        ? {
            ALPNCallback(this: tls.TLSSocket, { servername, protocols }: { servername: string; protocols: string[] }) {
              return certificates.selectProtocol(this, servername, protocols, served);
            },
          }
        : { ALPNProtocols: served }),
    });
  }

  private wire(server: http.Server): void {
    const config = this.loaded.config;
    server.maxHeadersCount = config.limits.header_count + 1;
    server.timeout = config.timeouts.idle;
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.lastResponse.set(req.socket, res);
      this.ctx.request(req, res, false);
    });
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.lastResponse.set(req.socket, res);
      this.ctx.request(req, res, true);
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(this.ctx.tunnels, req, socket, head),
    );
    server.on('connect', (_req: http.IncomingMessage, socket: Duplex) =>
      refuseConnect(socket, this.loaded.config.timeouts.idle),
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
      this.refuseClient(socket, clientErrorAnswer(error)),
    );
  }

  /**
   * Answers a request Node's parser refused (400, 408, 431), and closes. A request read whole before it
   * is answered first (pipelining order); one whose body was being read when the parser failed cannot
   * complete, so it is abandoned (cut, if its answer had begun).
   */
  private refuseClient(socket: Duplex, answer: string): void {
    // Already answered and closing: what the client sends meanwhile (which Node's spent parser refuses
    // again) is dropped until the close.
    if (socket.writableEnded) return;
    const previous = this.lastResponse.get(socket);
    if (previous && !previous.writableFinished && !previous.destroyed) {
      if (previous.req.complete) {
        previous.once('close', () => this.refuseClient(socket, answer));
        return;
      }
      if (previous.headersSent) {
        socket.destroy();
        return;
      }
    }
    if (!socket.writable) socket.destroy();
    else closeAfterFlush(socket, answer, this.loaded.config.timeouts.idle);
  }

  /** On a listener with proxy_protocol: the PROXY header comes first, before the lane or TLS (proxy-accept.ts). */
  private acceptProxyProtocol(server: http.Server, address: ListenerConfig): void {
    if (!('proxy_protocol' in address) || !address.proxy_protocol) return;
    this.acceptors.push(
      acceptProxyProtocol(server, {
        trusted: () => this.ctx.snapshot().trusted,
        headMs: () => headersTimeout(this.loaded.config),
        maxBytes: () => this.loaded.config.limits.header_size,
        refused: (peer, reason) =>
          this.ctx.logger.debug(
            { peer, reason, listener: `${address.host}:${address.port}` },
            'PROXY protocol: connection refused',
          ),
      }),
    );
    if (server instanceof https.Server) server.prependListener('secureConnection', adoptParentAddresses);
  }

  /** The default certificate or the protocol settings changed: every https listener takes them. */
  private setDefaultContext(options: tls.SecureContextOptions): void {
    for (const server of this.https) {
      server.setSecureContext(options);
      if (this.ticketKeys) server.setTicketKeys(this.ticketKeys);
    }
  }

  /** Follows the certificate files: a changed file is read again and put in force (file-watch.ts). */
  private watchFiles(loaded: LoadedConfig): void {
    this.fileWatcher.watch(
      certificateFiles(loaded).map(({ where, site, pair }): WatchedFiles => ({
        where,
        paths: [resolve(loaded.baseDir, pair.cert), resolve(loaded.baseDir, pair.key)],
        reload:
          site === undefined
            ? () => this.setDefaultContext(listenerContext(this.loaded))
            : () =>
                this.siteContexts.replace(site, tls.createSecureContext(certificateMaterial(this.loaded, pair, where))),
      })),
    );
  }
}
