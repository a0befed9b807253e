// One client request, from the listener to a member and back: site and route match, allow/deny,
// maintenance and pause, member selection with stickiness, forwarding with retries, response header
// rewriting, the drain notice, stats and the access log.
import { IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { MemberRuntime, PassivePolicy } from '../balance/member.js';
import { select } from '../balance/select.js';
import { cookieValue, DEFAULT_ROUTE_COOKIE, stickyCookie, type StickySigner } from '../balance/sticky.js';
import type { AccessLog } from './access-log.js';
import { statusClass, type SessionObserver } from './handle.js';
import { BannerInjector, bannerHtml, minutesLeft } from './drain-notice.js';
import {
  checkPreview,
  PREVIEW_COOKIE,
  PREVIEW_END_PATH,
  PREVIEW_PATH,
  previewCookie,
  type PreviewPin,
} from './preview.js';
import { sendError } from './error-pages.js';
import {
  connectionNamed,
  isHopByHop,
  requestId,
  reverseRefresh,
  reverseUrl,
  rewriteCookie,
  upstreamHeaders,
} from './headers.js';
import type { LaneRequest } from './lane.js';
import { RequestBody } from './request-body.js';
import { retryDecision } from './retry.js';
import {
  hostName,
  inMaintenance,
  isPaused,
  listHas,
  matchRoute,
  matchSite,
  memberPath,
  type RouteSnapshot,
  type SiteSnapshot,
  type Snapshot,
} from './snapshot.js';
import { Cancel, type UpstreamResponse } from './member-transport.js';
import { UpstreamError } from './errors.js';
import { messageOf } from '../errors.js';

/** A client request as the forwarder sees it: Node's, or the fast lane's (lane.ts). */
export type ClientRequest = IncomingMessage | LaneRequest;
/** What the forwarder and the error pages do with a response: ServerResponse and LaneResponse both fit. */
export interface ClientResponse extends NodeJS.WritableStream {
  statusCode: number;
  headersSent: boolean;
  destroyed: boolean;
  writableFinished: boolean;
  readonly req: { method?: string };
  writeHead(status: number, reason?: string, headers?: OutgoingHttpHeaders | string[]): this;
  writeHead(status: number, headers?: OutgoingHttpHeaders | string[]): this;
  getHeader(name: string): number | string | string[] | undefined;
  writeContinue(): void;
  destroy(): void;
}

export interface ForwardContext {
  snapshot(): Snapshot;
  signer: StickySigner;
  sessions: SessionObserver | undefined;
  accessLog: AccessLog | undefined;
  logger: Logger;
  passive(): PassivePolicy;
  /** Requests being handled (for graceful close). */
  active: { count: number };
  /** Holds a request of a paused site until `until` (or a resume / state change). */
  hold(site: string, until: number, resume: () => void, reject: () => void): void;
}

/**
 * One client request between the proxy and a member: what its 'close' listener has to settle, in
 * whichever phase it is — abandon the exchange while waiting for the member, or stop streaming the
 * member's body and give back its in-flight slot. State lives here rather than in closures over the
 * forwarder's locals: closures stored on long-lived objects kept every request's whole async frame
 * alive past young-generation collections (measured: 20× the bytes promoted, 4× the pause per scavenge).
 */
class Flight {
  readonly cancel = new Cancel();
  /** The member that answered, for the access log. */
  servedBy: string | undefined;
  /** The member exchange is over: answered, failed, or given up. */
  private finished = false;
  private totalTimer: NodeJS.Timeout | undefined;
  /** Armed only when an attempt could outlast the retry budget (a retry, or a budget under one attempt). */
  private budgetTimer: NodeJS.Timeout | undefined;
  /** While a member's body streams: the member whose in-flight slot this holds, and the body. */
  private member: MemberRuntime | undefined;
  private body: Readable | undefined;

  /** Gives up on the member after `ms` (timeouts.total), answered as a timeout. */
  limit(ms: number): void {
    this.totalTimer = setTimeout(timeOut, ms, this);
  }

  /** Gives up waiting for response headers `ms` from now (retries.budget), answered as a timeout. */
  budget(ms: number): void {
    this.budgetTimer ??= setTimeout(budgetSpent, ms, this);
  }

  /** Response headers arrived: the retry budget no longer applies. */
  answered(): void {
    if (this.budgetTimer) clearTimeout(this.budgetTimer);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.totalTimer) clearTimeout(this.totalTimer);
    if (this.budgetTimer) clearTimeout(this.budgetTimer);
  }

  /** The member's body streams to the client; the member's slot is given back by release(). */
  streaming(member: MemberRuntime, body: Readable): void {
    this.member = member;
    this.body = body;
  }

  release(): void {
    const member = this.member;
    if (!member) return;
    this.member = undefined;
    member.inFlight--;
    this.finish();
  }

  clientClosed(res: ClientResponse): void {
    if (this.body) {
      this.release();
      if (!res.writableFinished) this.body.destroy();
    } else if (!this.finished) {
      this.cancel.abort(new Error('client closed the connection'));
    }
  }
}

function timeOut(flight: Flight): void {
  flight.cancel.abort(new UpstreamError('total timeout', { phase: 'before-response', kind: 'timeout' }));
}

/** The retry budget ran out while a member still had the request: that member timed out. */
const BUDGET_SPENT = new UpstreamError('no response head within retries.budget', {
  phase: 'before-response',
  kind: 'timeout',
});

function budgetSpent(flight: Flight): void {
  flight.cancel.abort(BUDGET_SPENT);
}

/** What a request matched: its site and route, the path and host it asked for, and its request id. */
export interface RouteMatch {
  site: SiteSnapshot;
  route: RouteSnapshot;
  path: string;
  host: string;
  requestId: string;
}

/** What the client gets when member exchanges failed: 503 for a busy member (its queue), 504 for a timeout, else 502. */
function failureStatus(error: UpstreamError): 502 | 503 | 504 {
  return error.phase === 'queue' ? 503 : error.kind === 'timeout' ? 504 : 502;
}

function countStatus(site: SiteSnapshot | undefined, status: number): void {
  if (site) site.counters.responses[statusClass(status)]!++;
}

/** Where the client reached us, for rewriting member URLs (ProxyPassReverse). */
function publicOrigin(secure: boolean, req: ClientRequest, match: RouteMatch): string {
  return `${secure ? 'https' : 'http'}://${req.headers.host ?? match.host}`;
}

function plain(res: ClientResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Answers a refused request: 403 and 404 in plain text naming nothing, 400, 431 and 505 as error pages, 308 to HTTPS. */
function refuse(
  req: ClientRequest,
  res: ClientResponse,
  { refused: status, site, location }: Refusal,
  requestIdHeader: string,
): void {
  countStatus(site, status);
  if (location !== undefined) {
    res.writeHead(status, { location, 'content-length': 0 });
    res.end();
  } else if (status === 403 || status === 404) plain(res, status, status === 403 ? 'Forbidden\n' : 'Not Found\n');
  else sendError(res, status, { accept: req.headers.accept, requestIdHeader, requestId: requestId(undefined) });
}

/** Why a request is not forwarded: the status to answer, and its site when one matched. */
export interface Refusal {
  refused: 308 | 400 | 403 | 404 | 431 | 505;
  site: SiteSnapshot | undefined;
  /** 308 (redirect_https): the same URL on HTTPS. */
  location?: string;
}

function refusal(refused: Refusal['refused'], site?: SiteSnapshot): Refusal {
  return { refused, site };
}

function repeatsHost(raw: string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 4 || raw[i]!.toLowerCase() !== 'host') continue;
    if (seen) return true;
    seen = true;
  }
  return false;
}

/**
 * Whether the client used HTTPS: to this listener, or to a trusted proxy in front that says so in
 * X-Forwarded-Proto (its first value: the scheme the client used) — no redirect loop behind a load
 * balancer that terminates TLS.
 */
function reachedOverHttps(snap: Snapshot, req: ClientRequest, address: string): boolean {
  if ((req.socket as TLSSocket).encrypted === true) return true;
  const proto = req.headers['x-forwarded-proto'];
  return (
    typeof proto === 'string' &&
    /^\s*https\s*(,|$)/i.test(proto) &&
    snap.trusted !== undefined &&
    listHas(snap.trusted, address)
  );
}

/** Matches the request to a site and route, or says why it is refused. Shared by plain requests and upgrades. */
export function resolveRoute(snap: Snapshot, req: ClientRequest): RouteMatch | Refusal {
  const config = snap.config;
  if (req.rawHeaders.length > config.limits.header_count * 2) return refusal(431);
  // Node's parser takes HTTP/2.0 (and 0.9 spelled out) in a request line; the lane takes only 1.1.
  // Dayshift speaks HTTP/1.x to clients and would forward it as 1.1: 505 (RFC 9110 §15.6.6).
  if (req instanceof IncomingMessage && req.httpVersionMajor !== 1) return refusal(505);
  let path = req.url ?? '/';
  // RFC 9112 §3.2: a fragment is never sent in a request target, and a second Host is a 400 (the lane
  // takes only requests with one Host; Node's server keeps the first of several).
  if (path.includes('#') || (req instanceof IncomingMessage && repeatsHost(req.rawHeaders))) return refusal(400);
  const host = hostName(req.headers.host);
  if (path[0] !== '/') {
    // Absolute-form (RFC 9112 §3.2.2) is accepted only when it names the same host as Host: a request
    // for another authority is not ours to forward (it would make the proxy an open forward proxy).
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      return refusal(400);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || hostName(url.host) !== host) return refusal(400);
    path = url.pathname + url.search;
  }
  if (host === '' || /[^a-z0-9.\-:[\]_]/.test(host)) return refusal(400);
  const site = matchSite(snap, host);
  if (!site) return refusal(404);
  const address = req.socket.remoteAddress ?? '';
  // Before allow/deny and routes: those apply on HTTPS, where the client goes.
  if (site.httpsPort !== undefined && !reachedOverHttps(snap, req, address))
    return { refused: 308, site, location: `https://${host}${site.httpsPort}${path}` };
  if ((site.allow && !listHas(site.allow, address)) || (site.deny && listHas(site.deny, address)))
    return refusal(403, site);
  const route = matchRoute(site, path);
  if (!route) return refusal(404, site);
  const incoming = req.headers[snap.requestIdHeader];
  return { site, route, path, host, requestId: requestId(typeof incoming === 'string' ? incoming : undefined) };
}

/** The preview the request's cookie pins it to, if any: call only while snap.previews has some. */
export function previewOf(
  snap: Snapshot,
  signer: StickySigner,
  cookieHeader: string | undefined,
  address: string,
  now: number,
): PreviewPin | undefined {
  const token = cookieValue(cookieHeader, PREVIEW_COOKIE);
  if (!token) return undefined;
  const pin = checkPreview(snap.previews, signer, token, now, (allow) => listHas(allow, address));
  return typeof pin === 'number' ? undefined : pin;
}

export class Forwarder {
  constructor(private readonly ctx: ForwardContext) {}

  handle(req: ClientRequest, res: ClientResponse, expectContinue: boolean): void {
    const snap = this.ctx.snapshot();
    const started = Date.now();
    const idHeader = snap.requestIdHeader;
    const match = resolveRoute(snap, req);
    if ('refused' in match) return refuse(req, res, match, idHeader);
    // The proxy's own paths (/.dayshift/...): one character compared on every other request.
    if (match.path.charCodeAt(1) === 46 /* . */ && this.answerPreviewPath(req, res, match, snap, started)) return;
    this.ctx.active.count++;
    const flight = new Flight();
    res.once('close', () => {
      this.ctx.active.count--;
      flight.clientClosed(res);
      if (this.ctx.accessLog) this.log(req, res, match, started, flight);
    });
    const site = match.site;
    if (site.maintenance && inMaintenance(site, started)) {
      const retry =
        site.maintenance.until === undefined ? 60 : Math.max(1, Math.ceil((site.maintenance.until - started) / 1000));
      countStatus(site, 503);
      sendError(res, 503, {
        accept: req.headers.accept,
        message: site.maintenance.message,
        page: site.errorPages.get(503),
        retryAfterSeconds: retry,
        requestIdHeader: idHeader,
        requestId: match.requestId,
      });
      return;
    }
    if (isPaused(site, started)) {
      const t = match;
      this.ctx.hold(
        site.name,
        site.pause.until,
        () => {
          if (res.destroyed) return;
          // Released: route again on the snapshot in force now.
          const now = this.ctx.snapshot();
          const again = resolveRoute(now, req);
          if ('refused' in again) refuse(req, res, again, now.requestIdHeader);
          else this.run(req, res, again, expectContinue, now, flight);
        },
        () => {
          if (res.destroyed) return;
          countStatus(site, 503);
          sendError(res, 503, {
            accept: req.headers.accept,
            page: site.errorPages.get(503),
            retryAfterSeconds: 5,
            requestIdHeader: idHeader,
            requestId: t.requestId,
          });
        },
      );
      return;
    }
    this.run(req, res, match, expectContinue, snap, flight);
  }

  /** Forwards, and turns anything unexpected into a 502 (or a cut connection) rather than a crash. */
  private run(
    req: ClientRequest,
    res: ClientResponse,
    match: RouteMatch,
    expectContinue: boolean,
    snap: Snapshot,
    flight: Flight,
  ): void {
    this.forward(req, res, match, expectContinue, snap, flight).catch((error: unknown) => {
      this.ctx.logger.error({ err: error, requestId: match.requestId }, 'request failed unexpectedly');
      if (res.headersSent || res.destroyed) res.destroy();
      else
        sendError(res, 502, {
          accept: req.headers.accept,
          requestIdHeader: snap.requestIdHeader,
          requestId: match.requestId,
        });
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

  private log(req: ClientRequest, res: ClientResponse, match: RouteMatch, started: number, flight: Flight): void {
    const now = Date.now();
    const length = res.getHeader('content-length');
    this.ctx.accessLog!.write(
      {
        client: req.socket.remoteAddress ?? '-',
        method: req.method ?? '-',
        path: req.url ?? '-',
        httpVersion: req.httpVersion,
        status: res.statusCode,
        bytes: typeof length === 'string' || typeof length === 'number' ? Number(length) : 0,
        referer: req.headers.referer,
        userAgent: req.headers['user-agent'],
        host: match.host,
        site: match.site.name,
        member: flight.servedBy,
        durationMs: now - started,
        requestId: match.requestId,
      },
      now,
    );
  }

  private async forward(
    req: ClientRequest,
    res: ClientResponse,
    match: RouteMatch,
    expectContinue: boolean,
    snap: Snapshot,
    flight: Flight,
  ): Promise<void> {
    const { site, route } = match;
    const config = snap.config;
    const idHeader = snap.requestIdHeader;
    const secure = (req.socket as TLSSocket).encrypted === true;
    const clientAddress = req.socket.remoteAddress ?? '';
    const trusted = snap.trusted !== undefined && listHas(snap.trusted, clientAddress);
    const method = req.method ?? 'GET';
    const named = connectionNamed(req.headers.connection);
    const headers = upstreamHeaders(req.rawHeaders, named, {
      clientAddress,
      trusted,
      proto: secure ? 'https' : 'http',
      host: req.headers.host ?? match.host,
      upstreamHost: req.headers.host ?? match.host,
      requestIdHeader: idHeader,
      requestId: match.requestId,
      upgrade: false,
      write: config.forward_headers,
    });
    const lengthHeader = req.headers['content-length'];
    const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength > 0);
    // The lane hands requests with a body to Node's server, so a body always comes on an IncomingMessage.
    const body = hasBody && req instanceof IncomingMessage ? new RequestBody(req) : null;
    const path = memberPath(route, match.path);
    const abort = flight.cancel;
    if (config.timeouts.total > 0) flight.limit(config.timeouts.total);
    const cookieHeader = typeof req.headers.cookie === 'string' ? req.headers.cookie : undefined;
    const preview =
      snap.previews.size > 0 ? previewOf(snap, this.ctx.signer, cookieHeader, clientAddress, Date.now()) : undefined;
    // A preview of a cluster this route does not balance over leaves the route as it is.
    const pinned = preview && route.clusters.get(preview.cluster);
    const tried: MemberRuntime[] = [];
    let staleRetried = false;
    let lastError: UpstreamError | undefined;
    let attempts = 0;
    let continueSent = false;
    const retry = snap.retry;
    let budgetEnd = 0;
    if (retry.timeFirst) flight.budget(retry.budgetMs);
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
        flight.finish();
        const status = lastError ? failureStatus(lastError) : 503;
        countStatus(site, status);
        sendError(res, status, {
          accept: req.headers.accept,
          page: site.errorPages.get(status),
          retryAfterSeconds: status === 503 ? 5 : undefined,
          requestIdHeader: idHeader,
          requestId: match.requestId,
        });
        return;
      }
      const member = choice.member;
      if (expectContinue && !continueSent) {
        continueSent = true;
        res.writeContinue();
      }
      if (!site.config.preserve_host) headers[0]![1] = member.url.host;
      attempts++;
      member.inFlight++;
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
        member.inFlight--;
        const error =
          caught instanceof UpstreamError
            ? caught
            : new UpstreamError(String(caught), { phase: 'before-response', cause: caught });
        lastError = error;
        if (abort.aborted) {
          flight.finish();
          if (abort.reason === BUDGET_SPENT) {
            member.failed(BUDGET_SPENT.message, this.ctx.passive(), Date.now());
            this.ctx.logger.warn(
              { member: member.key, requestId: match.requestId, attempts, err: BUDGET_SPENT.message },
              'member exchange failed',
            );
          }
          const timedOut = abort.reason instanceof UpstreamError;
          if (timedOut && !res.headersSent) {
            countStatus(site, 504);
            sendError(res, 504, {
              accept: req.headers.accept,
              page: site.errorPages.get(504),
              requestIdHeader: idHeader,
              requestId: match.requestId,
            });
          }
          return;
        }
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
          flight.budget(msLeft);
          continue;
        }
        flight.finish();
        const status = failureStatus(error);
        this.ctx.logger.warn(
          { member: member.key, requestId: match.requestId, phase: error.phase, err: error.message },
          'member exchange failed',
        );
        countStatus(site, status);
        sendError(res, status, {
          accept: req.headers.accept,
          page: site.errorPages.get(status),
          retryAfterSeconds: status === 503 ? 5 : undefined,
          requestIdHeader: idHeader,
          requestId: match.requestId,
        });
        return;
      }
      flight.answered();
      const latencyMs = performance.now() - t0;
      this.respond(
        req,
        res,
        match,
        snap,
        member,
        choice.session,
        choice.newBinding,
        response,
        latencyMs,
        secure,
        flight,
        pinned ? preview : undefined,
      );
      // Shadow traffic (shadow.ts): offered once the live answer is under way, never awaited.
      const shadow = snap.shadow;
      if (shadow !== undefined && body === null)
        shadow.copier.offer(shadow, {
          site,
          route,
          cluster: member.cluster,
          method,
          path,
          headers,
          client: clientInfo,
          status: response.status,
          latencyMs,
        });
      return;
    }
  }

  private respond(
    req: ClientRequest,
    res: ClientResponse,
    match: RouteMatch,
    snap: Snapshot,
    member: MemberRuntime,
    session: string | undefined,
    newBinding: boolean,
    response: UpstreamResponse,
    latencyMs: number,
    secure: boolean,
    flight: Flight,
    preview: PreviewPin | undefined,
  ): void {
    const { site, route } = match;
    const config = snap.config;
    const status = response.status;
    member.observe(status, latencyMs);
    if (config.passive.statuses.includes(status)) member.failed(`answered ${status}`, this.ctx.passive(), Date.now());
    else member.succeeded();
    flight.servedBy = member.key;
    const now = Date.now();
    const sticky = route.sticky;
    const sessions = this.ctx.sessions;
    const out: string[] = [];
    let named: Set<string> | undefined;
    for (const [name, value] of response.headers) if (name === 'connection') named = connectionNamed(value);
    const prefix = route.stripped;
    const memberOrigin = member.origin;
    let contentLength: number | undefined;
    let html = false;
    let encoded = false;
    for (const [name, value] of response.headers) {
      if (isHopByHop(name, named)) continue;
      switch (name) {
        case 'location':
        case 'content-location':
          out.push(name, reverseUrl(value, memberOrigin, publicOrigin(secure, req, match), prefix));
          continue;
        case 'refresh':
          out.push(name, reverseRefresh(value, memberOrigin, publicOrigin(secure, req, match), prefix));
          continue;
        case 'set-cookie': {
          if (sessions && sticky?.mode === 'route') {
            const sessionValue = cookieValue(value.split(';', 1)[0], sticky.cookie ?? DEFAULT_ROUTE_COOKIE);
            if (sessionValue) sessions.issued(member.key, sessionValue, now);
          }
          out.push(
            name,
            site.config.cookie_domain || site.config.cookie_path
              ? rewriteCookie(value, site.config.cookie_domain, site.config.cookie_path)
              : value,
          );
          continue;
        }
        case 'content-length':
          contentLength = Number(value);
          continue;
        case 'content-type':
          html = value.startsWith('text/html');
          break;
        case 'content-encoding':
          encoded = value !== 'identity';
          break;
        case 'strict-transport-security':
          if (secure && site.hsts !== undefined) continue;
          break;
        case 'cache-control':
          if (preview) continue;
          break;
      }
      out.push(name, value);
    }
    out.push(config.request_id_header, match.requestId);
    if (secure && site.hsts !== undefined) out.push('strict-transport-security', site.hsts);
    if (sticky?.mode === 'cookie') {
      let bound = session;
      if (newBinding || bound === undefined) {
        const value = this.ctx.signer.issue(member.key);
        bound = value.slice(value.indexOf('.') + 1, value.lastIndexOf('.'));
        out.push('set-cookie', stickyCookie(sticky, value, secure));
      }
      // Signed by this proxy: issued by it, whether now or before (another instance, a restart).
      sessions?.issued(member.key, bound, now);
    } else if (session !== undefined) {
      sessions?.seen(member.key, session, now);
    }
    let banner: Buffer | undefined;
    const notice = config.drain.notice;
    const group = notice.enabled && !preview ? route.clusters.get(member.cluster) : undefined;
    const injectable = html && !encoded && req.method !== 'HEAD' && status !== 204 && status !== 304;
    if (preview) {
      // A pinned answer is for this browser alone: no shared cache in front may keep it for others.
      out.push('dayshift-preview', preview.cluster, 'cache-control', 'private, no-cache');
      if (injectable) {
        banner = preview.banner;
        if (contentLength !== undefined) contentLength += banner.length;
      }
    } else if (group && group.shared && group.traffic === 'draining') {
      const minutes = minutesLeft(group.drainDeadline, config.drain.deadline, now);
      out.push(notice.header, String(minutes));
      if (injectable) {
        banner = Buffer.from(bannerHtml(notice.banner.replaceAll('{minutes}', String(minutes))));
        if (contentLength !== undefined) contentLength += banner.length;
      }
    }
    if (contentLength !== undefined) out.push('content-length', String(contentLength));
    if (res.destroyed) {
      response.body.destroy();
      member.inFlight--;
      flight.finish();
      return;
    }
    // A body that has all arrived goes out with the headers in one write; anything else is streamed.
    const whole = banner ? undefined : response.whole?.();
    try {
      res.writeHead(status, response.statusMessage || undefined, out);
    } catch (error) {
      // A header Node refuses to send (bad characters from the member): answer 502 instead.
      if (whole === undefined) response.body.destroy();
      member.inFlight--;
      flight.finish();
      this.ctx.logger.warn(
        { member: member.key, requestId: match.requestId, err: messageOf(error) },
        'member response headers refused',
      );
      countStatus(site, 502);
      sendError(res, 502, {
        accept: req.headers.accept,
        page: site.errorPages.get(502),
        requestIdHeader: snap.requestIdHeader,
        requestId: match.requestId,
      });
      return;
    }
    countStatus(site, status);
    if (whole !== undefined) {
      member.inFlight--;
      flight.finish();
      res.end(whole);
      return;
    }
    flight.streaming(member, response.body);
    response.body.once('end', () => flight.release());
    response.body.once('error', (error) => {
      flight.release();
      this.ctx.logger.warn(
        { member: member.key, requestId: match.requestId, err: error.message },
        'response body failed',
      );
      res.destroy();
    });
    (banner ? response.body.pipe(new BannerInjector(banner)) : response.body).pipe(res);
  }
}
