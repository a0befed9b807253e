// One client request, from the listener to a member: a sequence of named guards (refused, the proxy's
// own paths, maintenance, paused), then forward(), which picks a member (stickiness, previews) and tries
// it, with retries, until one answers (respond.ts) or none can (502/503/504). route.ts matches the
// request; exchange.ts holds its state; pause.ts holds requests of paused sites.
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { MemberRuntime, PassivePolicy } from '../balance/member.js';
import { select } from '../balance/select.js';
import type { StickySigner } from '../balance/sticky.js';
import { CLIENT_LEFT, type AccessLog } from './access-log.js';
import type { SessionObserver } from './handle.js';
import { checkPreview, PREVIEW_END_PATH, PREVIEW_PATH, previewCookie } from './preview.js';
import { upstreamHeaders, connectionNamed } from './headers.js';
import { H2Request } from './h2.js';
import { LaneRequest } from './lane.js';
import { RequestBody } from './request-body.js';
import { retryDecision } from './retry.js';
import { countStatus, inMaintenance, listHas, memberPath, type Snapshot } from './snapshot.js';
import type { UpstreamResponse } from './member-transport.js';
import { UpstreamError } from './errors.js';
import {
  BUDGET_SPENT,
  Exchange,
  onResponseClose,
  type ClientRequest,
  type ClientResponse,
  type RouteMatch,
} from './exchange.js';
import { HeldRequests, isPaused, type HeldOutcome } from './pause.js';
import { plain, previewOf, refuse, resolveRoute, type Refusal } from './route.js';
import { respond } from './respond.js';

export type { ClientRequest, ClientResponse, RouteMatch } from './exchange.js';

export interface ForwardContext {
  snapshot(): Snapshot;
  signer: StickySigner;
  sessions: SessionObserver | undefined;
  accessLog(): AccessLog | undefined;
  logger: Logger;
  passive(): PassivePolicy;
  /** Requests being handled (for graceful close). */
  active: { count: number };
}

/** The access log fields that come from the request and its answer alone. */
function requestFields(req: ClientRequest, res: ClientResponse) {
  const length = res.getHeader('content-length');
  return {
    client: req.socket.remoteAddress ?? '-',
    method: req.method ?? '-',
    path: req.url ?? '-',
    httpVersion: req.httpVersion,
    status: res.headersSent ? res.statusCode : CLIENT_LEFT,
    bytes: typeof length === 'string' || typeof length === 'number' ? Number(length) : 0,
    referer: req.headers.referer,
    userAgent: req.headers['user-agent'],
  };
}

/** A request refused in routing (unknown host 404, 403, 400, 431, 505, the 308 to HTTPS) is logged too. */
function logRefusal(
  accessLog: AccessLog,
  req: ClientRequest,
  res: ClientResponse,
  refusal: Refusal,
  started: number,
  requestId: string | undefined,
): void {
  const now = Date.now();
  accessLog.write(
    {
      ...requestFields(req, res),
      host: req.headers.host ?? '-',
      site: refusal.site?.name ?? '-',
      member: undefined,
      durationMs: now - started,
      requestId: requestId ?? '-',
    },
    now,
  );
}

/** What the client gets when member exchanges failed: 503 for a busy member (its queue), 504 for a timeout, else 502. */
function failureStatus(error: UpstreamError): 502 | 503 | 504 {
  return error.phase === 'queue' ? 503 : error.kind === 'timeout' ? 504 : 502;
}

export class Forwarder {
  /** Requests of paused sites, waiting (pause.ts). */
  readonly held: HeldRequests<Exchange>;

  constructor(private readonly ctx: ForwardContext) {
    this.held = new HeldRequests(ctx.snapshot, (exchange, outcome) => this.settleHeld(exchange, outcome));
  }

  handle(req: ClientRequest, res: ClientResponse, expectContinue: boolean): void {
    const snap = this.ctx.snapshot();
    const started = Date.now();
    const match = resolveRoute(snap, req);
    if ('refused' in match) {
      const id = refuse(req, res, match, snap.requestIdHeader);
      const accessLog = this.ctx.accessLog();
      if (accessLog) logRefusal(accessLog, req, res, match, started, id);
      return;
    }
    // The proxy's own paths (/.dayshift/...): one character compared on every other request.
    if (match.path.charCodeAt(1) === 46 /* . */ && this.answerPreviewPath(req, res, match, snap, started)) return;
    const exchange = new Exchange(req, res, match, snap, expectContinue, started);
    this.ctx.active.count++;
    onResponseClose(req, res, () => this.closed(exchange));
    if (this.maintenance(exchange)) return;
    if (this.paused(exchange)) return;
    this.run(exchange);
  }

  /** The site is in maintenance: its 503 page, with Retry-After until the maintenance ends. */
  private maintenance(exchange: Exchange): boolean {
    const { site } = exchange.match;
    if (!site.maintenance || !inMaintenance(site, exchange.started)) return false;
    const until = site.maintenance.until;
    exchange.fail(
      503,
      until === undefined ? 60 : Math.max(1, Math.ceil((until - exchange.started) / 1000)),
      site.maintenance.message,
    );
    return true;
  }

  /** The site is paused: the request waits in `held` until the pause ends (settleHeld). */
  private paused(exchange: Exchange): boolean {
    const { site } = exchange.match;
    if (!isPaused(site, exchange.started)) return false;
    this.held.hold(site.name, site.pause.until, exchange);
    return true;
  }

  private settleHeld(exchange: Exchange, outcome: HeldOutcome): void {
    const { req, res } = exchange;
    if (res.destroyed) return;
    if (outcome === 'reject') return exchange.fail(503, 5);
    // Released: route again on the snapshot in force now.
    const snap = this.ctx.snapshot();
    const again = resolveRoute(snap, req);
    if ('refused' in again) {
      refuse(req, res, again, snap.requestIdHeader);
      return;
    }
    exchange.match = again;
    exchange.snap = snap;
    this.run(exchange);
  }

  /** The client connection closed: the exchange lets go of its member, and the request is logged. */
  private closed(exchange: Exchange): void {
    this.ctx.active.count--;
    exchange.clientClosed();
    const accessLog = this.ctx.accessLog();
    if (accessLog) this.log(accessLog, exchange);
  }

  /** Forwards, and turns anything unexpected into a 502 (or a cut connection) rather than a crash. */
  private run(exchange: Exchange): void {
    this.forward(exchange).catch((error: unknown) => {
      const { res } = exchange;
      exchange.finish();
      this.ctx.logger.error({ err: error, requestId: exchange.match.requestId }, 'request failed unexpectedly');
      if (res.headersSent || res.destroyed) res.destroy();
      else exchange.fail(502);
    });
  }

  /**
   * The preview link (`/.dayshift/preview?token=…`: sets the cookie, then to `/`) and "end preview"
   * (`/.dayshift/preview/end`: clears it). False for any other path, which goes to the members.
   */
  private answerPreviewPath(
    req: ClientRequest,
    res: ClientResponse,
    match: RouteMatch,
    snap: Snapshot,
    now: number,
  ): boolean {
    const path = match.path;
    const query = path.indexOf('?');
    const bare = query < 0 ? path : path.slice(0, query);
    if (bare !== PREVIEW_PATH && bare !== PREVIEW_END_PATH) return false;
    const secure = (req.socket as TLSSocket).encrypted === true;
    const home = (cookie: string) => {
      countStatus(match.site, 303);
      res.writeHead(303, { location: '/', 'set-cookie': cookie, 'cache-control': 'no-store', 'content-length': 0 });
      res.end();
    };
    if (bare === PREVIEW_END_PATH) {
      home(previewCookie(undefined, 0, secure));
      return true;
    }
    const token = new URLSearchParams(query < 0 ? '' : path.slice(query + 1)).get('token') ?? undefined;
    const address = req.socket.remoteAddress ?? '';
    const pin = checkPreview(snap.previews, this.ctx.signer, token, now, (allow) => listHas(allow, address));
    if (typeof pin === 'number') {
      countStatus(match.site, pin);
      const why =
        pin === 400
          ? 'This preview link is not valid.'
          : pin === 403
            ? 'This preview is not open to your address.'
            : 'This preview has ended or was revoked.';
      plain(res, pin, `${why}\n`);
      return true;
    }
    home(previewCookie(token, Math.floor((pin.until - now) / 1000), secure));
    return true;
  }

  private log(accessLog: AccessLog, exchange: Exchange): void {
    const { req, res, match } = exchange;
    const now = Date.now();
    accessLog.write(
      {
        ...requestFields(req, res),
        host: match.host,
        site: match.site.name,
        // As nginx's $upstream_addr: the member that answered, else the last one the request went to.
        member: exchange.servedBy ?? exchange.choice?.member.key,
        durationMs: now - exchange.started,
        requestId: match.requestId,
      },
      now,
    );
  }

  /** Picks a member and tries it, again on another while retries allow, until one answers or none can. */
  private async forward(exchange: Exchange): Promise<void> {
    const { req, res, match, snap, secure } = exchange;
    const { route } = match;
    const config = snap.config;
    const clientAddress = req.socket.remoteAddress ?? '';
    const trusted = snap.trusted !== undefined && listHas(snap.trusted, clientAddress);
    const method = req.method ?? 'GET';
    const headers = upstreamHeaders(req.rawHeaders, connectionNamed(req.headers.connection), {
      clientAddress,
      trusted,
      proto: secure ? 'https' : 'http',
      host: req.headers.host ?? match.host,
      upstreamHost: req.headers.host ?? match.host,
      requestIdHeader: snap.requestIdHeader,
      requestId: match.requestId,
      upgrade: false,
      write: config.forward_headers,
    });
    const lengthHeader = req.headers['content-length'];
    const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
    // The lane hands requests with a body to Node's server; an HTTP/2 body may come without a length.
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (contentLength !== undefined && contentLength > 0) ||
      (req instanceof H2Request && req.hasBody);
    const body =
      hasBody && !(req instanceof LaneRequest) ? new RequestBody(req instanceof H2Request ? req.stream : req) : null;
    const path = memberPath(route, match.path);
    const abort = exchange.cancel;
    if (config.timeouts.total > 0) exchange.limit(config.timeouts.total);
    const cookieHeader = typeof req.headers.cookie === 'string' ? req.headers.cookie : undefined;
    const preview =
      snap.previews.size > 0 ? previewOf(snap, this.ctx.signer, cookieHeader, clientAddress, Date.now()) : undefined;
    // A preview of a cluster this route does not balance over leaves the route as it is.
    const pinned = preview && route.clusters.get(preview.cluster);
    if (pinned) exchange.preview = preview;
    const tried: MemberRuntime[] = [];
    let staleRetried = false;
    let lastError: UpstreamError | undefined;
    let attempts = 0;
    let continueSent = false;
    const retry = snap.retry;
    let budgetEnd = 0;
    if (retry.timeFirst) exchange.budget(retry.budgetMs);
    const clientInfo = {
      address: clientAddress,
      port: req.socket.remotePort ?? 0,
      secure,
      serverName: match.host,
      serverAddress: req.socket.localAddress ?? '',
      serverPort: req.socket.localPort ?? 0,
    };
    while (true) {
      const now = Date.now();
      budgetEnd ||= now + retry.budgetMs;
      const choice = select(
        route,
        cookieHeader,
        match.path,
        this.ctx.signer,
        now,
        tried.length > 0 ? tried : undefined,
        pinned,
      );
      if (typeof choice === 'string') {
        exchange.finish();
        const status = lastError ? failureStatus(lastError) : 503;
        return exchange.fail(status, status === 503 ? 5 : undefined);
      }
      const member = choice.member;
      if (exchange.expectContinue && !continueSent) {
        continueSent = true;
        res.writeContinue();
      }
      if (!match.site.config.preserve_host) headers[0]![1] = member.url.host;
      attempts++;
      exchange.choice = choice;
      exchange.claim(member);
      const t0 = performance.now();
      let response: UpstreamResponse;
      try {
        response = await member.transport.request({
          method,
          path,
          headers,
          body,
          contentLength,
          client: clientInfo,
          route: member.config.route,
          signal: abort,
        });
      } catch (caught) {
        exchange.release();
        const error =
          caught instanceof UpstreamError
            ? caught
            : new UpstreamError(String(caught), { phase: 'before-response', cause: caught });
        lastError = error;
        if (abort.aborted) return this.abandoned(exchange, member, attempts);
        // A member that cannot speak the protocol right (AJP: a wrong secret) is as broken as one that is
        // down. A busy one (its queue full, or the wait for a connection over) is healthy: not a failure.
        if (
          error.phase !== 'queue' &&
          (error.phase === 'connect' || error.kind === 'timeout' || error.kind === 'protocol')
        )
          member.failed(error.message, this.ctx.passive(), Date.now());
        const msLeft = budgetEnd - Date.now();
        const verdict = retryDecision(retry, {
          error,
          method,
          bodyIntact: body === null || !body.started,
          attempts,
          staleRetried,
          msLeft,
        });
        if (verdict !== 'stop') {
          if (verdict === 'stale') {
            staleRetried = true;
            attempts--;
          } else {
            tried.push(member);
          }
          exchange.budget(msLeft);
          continue;
        }
        exchange.finish();
        const status = failureStatus(error);
        this.ctx.logger.warn(
          { member: member.key, requestId: match.requestId, phase: error.phase, err: error.message },
          'member exchange failed',
        );
        return exchange.fail(status, status === 503 ? 5 : undefined);
      }
      exchange.answered(response, performance.now() - t0);
      respond(this.ctx, exchange);
      // Shadow traffic (shadow.ts): offered once the live answer is under way, never awaited.
      const shadow = snap.shadow;
      if (shadow !== undefined && body === null)
        shadow.copier.offer(shadow, {
          site: match.site,
          route,
          cluster: member.cluster,
          method,
          path,
          headers,
          client: clientInfo,
          status: response.status,
          latencyMs: exchange.latencyMs,
        });
      return;
    }
  }

  /** The exchange was aborted: the client left, or a deadline (timeouts.total, retries.budget) passed: 504. */
  private abandoned(exchange: Exchange, member: MemberRuntime, attempts: number): void {
    const reason = exchange.cancel.reason;
    exchange.finish();
    if (reason === BUDGET_SPENT) {
      member.failed(BUDGET_SPENT.message, this.ctx.passive(), Date.now());
      this.ctx.logger.warn(
        { member: member.key, requestId: exchange.match.requestId, attempts, err: BUDGET_SPENT.message },
        'member exchange failed',
      );
    }
    if (reason instanceof UpstreamError && !exchange.res.headersSent) exchange.fail(504);
  }
}
