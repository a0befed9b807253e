// Which site and route a request is for, or why it is refused (400, 403, 404, 431, 505, or 308 to
// HTTPS): the first thing that happens to every request and upgrade, on the snapshot in force.
import { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { cookieValue, type StickySigner } from '../balance/sticky.js';
import { sendError } from './error-pages.js';
import type { ClientRequest, ClientResponse, RouteMatch } from './exchange.js';
import { requestId } from './headers.js';
import { checkPreview, PREVIEW_COOKIE, type PreviewPin } from './preview.js';
import { countStatus, hostName, listHas, matchRoute, matchSite, type SiteSnapshot, type Snapshot } from './snapshot.js';

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

/**
 * Answers a refused request: 403 and 404 in plain text naming nothing, 400, 431 and 505 as error pages
 * (with a request id, returned for the access log), 308 to HTTPS.
 */
export function refuse(
  req: ClientRequest,
  res: ClientResponse,
  { refused: status, site, location }: Refusal,
  requestIdHeader: string,
): string | undefined {
  countStatus(site, status);
  if (location !== undefined) {
    res.writeHead(status, { location, 'content-length': 0 });
    res.end();
  } else if (status === 403 || status === 404) plain(res, status, status === 403 ? 'Forbidden\n' : 'Not Found\n');
  else {
    const id = requestId(undefined);
    sendError(res, status, { accept: req.headers.accept, requestIdHeader, requestId: id });
    return id;
  }
  return undefined;
}

/** A short plain-text answer that names nothing (403, 404, preview link errors). */
export function plain(res: ClientResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}
