// The admin listener: JSON API under /api/, /healthz, /metrics, and whatever else registers a route
// (the dashboard). Bearer-token auth on every route that does not opt out.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { clientErrorAnswer, closeAfterFlush } from '../proxy/closing.js';
import type { Actor, AuditLog } from '../control/audit.js';
import { FailureLimiter, type WrongToken } from './failure-limiter.js';
import { listenOn, listeningFd, type HandedSocket } from '../socket-activation.js';
import { StoreUnavailableError } from '../store/errors.js';
import { HttpError, Router, statusOf } from './router.js';
import { tokenMatches } from './token.js';
import { messageOf } from '../errors.js';

/** Returns who is calling, or undefined when this authenticator does not recognise the request. */
export type Authenticator = (req: IncomingMessage) => Actor | undefined;

/**
 * How long a request head may take on the admin listener, and how often that is checked: an operator's
 * client sends its head at once, so a slow one is an attack on the file descriptors (Node's defaults
 * are 60 s checked every 30 s).
 */
const HEADERS_TIMEOUT_MS = 10_000;
const CHECK_INTERVAL_MS = 1000;
/** How long a client may take to read an answer before its connection goes. */
const FLUSH_MS = 30_000;

export interface AdminServerOptions {
  token: string;
  logger: Logger;
  version: string;
  /** Where wrong tokens are recorded (up to the rate limit per address and window). */
  audit?: AuditLog;
}

export class AdminServer {
  readonly router = new Router();
  private readonly authenticators: Authenticator[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<import('node:net').Socket>();
  /** Wrong bearer tokens per address: ten a minute, then 429 for wrong ones until the window passes. */
  private readonly wrongTokens = new FailureLimiter(10, 60_000);

  constructor(private readonly options: AdminServerOptions) {
    this.authenticators.push((req) => {
      const header = req.headers.authorization;
      if (!header?.startsWith('Bearer ')) return undefined;
      return tokenMatches(header.slice(7).trim(), options.token)
        ? { who: 'token:admin', from: remoteAddress(req) }
        : undefined;
    });
    this.router.add(
      { method: 'GET', path: '/healthz', summary: 'Liveness of the Dayshift process', auth: false, tag: 'meta' },
      () => ({ ok: true }),
    );
    this.router.add({ method: 'GET', path: '/api/openapi.json', summary: 'This OpenAPI document', tag: 'meta' }, () =>
      this.router.openapi({ title: 'Dayshift admin API', version: options.version }),
    );
    this.server = createServer(
      { headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CHECK_INTERVAL_MS },
      (req, res) => void this.handle(req, res),
    );
    // A head refused (400, 408, 431): answered, then the connection is released, not left half-open.
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) socket.destroy();
      else closeAfterFlush(socket, clientErrorAnswer(error), FLUSH_MS);
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Adds a way to authenticate (e.g. the dashboard's session cookie), tried after the bearer token. */
  addAuthenticator(authenticator: Authenticator): void {
    this.authenticators.push(authenticator);
  }

  authenticate(req: IncomingMessage): Actor | undefined {
    for (const authenticate of this.authenticators) {
      const actor = authenticate(req);
      if (actor) return actor;
    }
    return undefined;
  }

  /** Binds the address, or listens on the socket systemd handed down for it (named admin). */
  async listen(host: string, port: number): Promise<AddressInfo> {
    await listenOn(this.server, { host, port }, 'admin');
    return this.server.address() as AddressInfo;
  }

  /** The listening socket, to hand to the next generation at an upgrade. */
  listeningSocket(): HandedSocket {
    return { name: 'admin', fd: listeningFd(this.server) };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      // Node's parser lets `HTTP/2.0` through; the admin API speaks HTTP/1.x, as the proxy (RFC 9110 §15.6.6).
      if (req.httpVersionMajor !== 1)
        throw new HttpError(505, `HTTP/${req.httpVersion} is not supported: use HTTP/1.1`);
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://admin');
      } catch {
        throw new HttpError(400, 'bad request target');
      }
      const found = this.router.match(req.method ?? 'GET', url.pathname);
      if (found === undefined) throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`);
      if (found === 'method') throw new HttpError(405, `method ${req.method} not allowed on ${url.pathname}`);
      let actor: Actor = { who: 'anonymous', from: remoteAddress(req) };
      if (this.router.requiresAuth(found.route)) {
        const known = this.authenticate(req);
        if (!known && req.headers.authorization !== undefined) {
          const from = remoteAddress(req);
          answerWrongToken(this.wrongTokens.wrong(from), from, 'admin API', res, this.options);
        }
        if (!known) {
          res.setHeader('WWW-Authenticate', 'Bearer realm="dayshift"');
          throw new HttpError(401, 'missing or wrong admin token (send Authorization: Bearer TOKEN)');
        }
        actor = known;
      }
      const result = await this.router.run(found.route, {
        req,
        res,
        params: found.params,
        query: url.searchParams,
        actor,
      });
      if (result !== undefined && !res.headersSent) sendJson(res, 200, result);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // The store (etcd) out of reach is the documented "unreachable" answer (the CLI exits 5), from any route.
      const status = statusOf(err);
      if (status >= 500) this.options.logger.error({ err }, 'admin API error');
      const message =
        err instanceof StoreUnavailableError ? `the store is unreachable: ${messageOf(err)}` : messageOf(err);
      sendJson(res, status, {
        error: message,
        ...(err instanceof HttpError && err.details ? { details: err.details } : {}),
      });
    }
  }
}

/**
 * After a wrong token (FailureLimiter.wrong): throws 429 when the address is over its limit, else logs
 * and audits the failure — at most the limit's worth per address and window, so a flood of guesses
 * cannot fill the disk. The right token is never refused (failure-limiter.ts).
 */
export function answerWrongToken(
  verdict: WrongToken,
  from: string,
  where: string,
  res: ServerResponse,
  { audit, logger }: { audit?: AuditLog; logger?: Logger },
): void {
  if ('retryAfter' in verdict) {
    res.setHeader('Retry-After', String(verdict.retryAfter));
    throw new HttpError(429, `too many wrong tokens from ${from}: try again in ${verdict.retryAfter}s`);
  }
  logger?.warn({ from, where, failures: verdict.failures }, 'wrong admin token');
  audit
    ?.record({ who: 'anonymous', from }, 'wrong token', where, {
      failures: verdict.failures,
      ...(verdict.throttled ? { throttled: true } : {}),
    })
    .catch((err: unknown) => {
      logger?.error({ err }, 'cannot write the audit log');
    });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Starts a server-sent events stream; returns a function that sends one event. */
export function startEvents(
  req: IncomingMessage,
  res: ServerResponse,
  onClose: () => void,
): (event: string, data: unknown) => void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': dayshift\n\n');
  req.on('close', onClose);
  return (event, data) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
}

/** The client's address, for the audit log and rate limits. */
export function remoteAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}
