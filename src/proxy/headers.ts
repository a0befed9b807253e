// Header work on the hot path: hop-by-hop removal (including names listed in Connection), X-Forwarded-*,
// Forwarded and X-Real-IP, Host, the request id, and the reverse rewrites of Location/Content-Location/
// Refresh and Set-Cookie.
import { randomBytes } from 'node:crypto';
import { validateHeaderName, validateHeaderValue, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { ForwardHeadersConfig } from '../config/schema.js';

/**
 * Calls `visit` for each header of a response head given as ServerResponse.writeHead takes it (an object,
 * or alternating names and values), after Node's own checks: they throw on a bad name or value.
 */
export function eachHeader(
  headers: OutgoingHttpHeaders | string[] | undefined,
  visit: (name: string, value: string) => void,
): void {
  const add = (name: string, value: string) => {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    visit(name, value);
  };
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) add(headers[i]!, headers[i + 1]!);
  } else if (headers) {
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) add(name, v);
      else add(name, String(value));
    }
  }
}

/** Request headers of which Node keeps the first when repeated (among those the forwarder reads). */
const FIRST_ONLY = new Set(['user-agent', 'referer', 'authorization', 'proxy-authorization', 'content-type', 'host']);

/** Headers by lower-case name, repeated ones combined as Node's IncomingMessage combines them. */
export function indexHeaders(rawHeaders: string[]): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    // Cookies joined with "; ", a few kept first, the rest ", ".
    else if (!FIRST_ONLY.has(name)) headers[name] = `${seen as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return headers;
}

/**
 * A member's response headers (alternating names and values) without the hop-by-hop ones, those named
 * in its Connection header included: what a relayed answer passes on.
 */
export function endToEnd(headers: string[]): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i]!.toLowerCase() === 'connection') named = connectionNamed(headers[i + 1]);
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2)
    if (!isHopByHop(headers[i]!.toLowerCase(), named)) kept.push(headers[i]!, headers[i + 1]!);
  return kept;
}

/** RFC 9110 §7.6.1 connection-specific headers, plus the non-standard ones proxies also drop. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/** Names listed in Connection headers (lower-case), or undefined when there are none beyond the usual. */
export function connectionNamed(connection: string | string[] | undefined): Set<string> | undefined {
  if (!connection) return undefined;
  // The usual values, answered without splitting (this runs on every response).
  if (connection === 'keep-alive' || connection === 'close' || connection === 'Keep-Alive' || connection === 'Close')
    return undefined;
  let named: Set<string> | undefined;
  for (const value of Array.isArray(connection) ? connection : [connection]) {
    for (const token of value.split(',')) {
      const name = token.trim().toLowerCase();
      if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue;
      (named ??= new Set()).add(name);
    }
  }
  return named;
}

export function isHopByHop(name: string, named: Set<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || (named !== undefined && named.has(name));
}

const REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,128}$/;
const idPrefix = randomBytes(6).toString('hex');
let idCounter = 0;

/** A valid incoming id, or a new one unique to this process. */
export function requestId(incoming: string | undefined): string {
  if (incoming !== undefined && REQUEST_ID.test(incoming)) return incoming;
  return `${idPrefix}-${(++idCounter).toString(36)}`;
}

export interface ForwardedInfo {
  clientAddress: string;
  trusted: boolean;
  proto: 'http' | 'https';
  host: string;
  /** Host header for the member. */
  upstreamHost: string;
  requestIdHeader: string;
  requestId: string;
  /** Keep Upgrade/Connection (tunnels). */
  upgrade: boolean;
  /** Which of Forwarded and X-Real-IP Dayshift writes (config forward_headers). */
  write: ForwardHeadersConfig;
}

/** RFC 7239 §6 node and host values: an IPv6 address is bracketed, and anything but a token quoted. */
function forwardedElement(info: ForwardedInfo): string {
  const address = info.clientAddress;
  const node = address.includes(':') ? `"[${address}]"` : address;
  return `for=${node};proto=${info.proto};host="${info.host.replace(/["\\]/g, '')}"`;
}

/**
 * Builds the member-bound header list from the client's raw headers. Expect is answered by the proxy
 * itself; Content-Length is passed through (the transport frames the body).
 */
export function upstreamHeaders(
  raw: string[],
  named: Set<string> | undefined,
  info: ForwardedInfo,
): [string, string][] {
  const out: [string, string][] = [['host', info.upstreamHost]];
  let xff: string | undefined;
  let proto: string | undefined;
  let fhost: string | undefined;
  let forwarded: string | undefined;
  let realIp: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    switch (name) {
      case 'host':
      case 'expect':
        continue;
      case 'x-forwarded-for':
        if (info.trusted) xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        if (info.trusted) proto = value;
        continue;
      case 'x-forwarded-host':
        if (info.trusted) fhost = value;
        continue;
      // Client-address headers, like X-Forwarded-*: believed only from trusted proxies.
      case 'forwarded':
        if (info.trusted) forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        continue;
      case 'x-real-ip':
        if (info.trusted) realIp ??= value;
        continue;
      case 'connection':
      case 'upgrade':
        if (info.upgrade) out.push([name, value]);
        continue;
    }
    if (name === info.requestIdHeader || isHopByHop(name, named)) continue;
    out.push([name, value]);
  }
  out.push(
    ['x-forwarded-for', xff === undefined ? info.clientAddress : `${xff}, ${info.clientAddress}`],
    ['x-forwarded-proto', proto ?? info.proto],
    ['x-forwarded-host', fhost ?? info.host],
    [info.requestIdHeader, info.requestId],
  );
  if (info.write.forwarded)
    forwarded = forwarded === undefined ? forwardedElement(info) : `${forwarded}, ${forwardedElement(info)}`;
  if (forwarded !== undefined) out.push(['forwarded', forwarded]);
  if (info.write.x_real_ip) realIp ??= info.clientAddress;
  if (realIp !== undefined) out.push(['x-real-ip', realIp]);
  return out;
}

/** Rewrites a URL that points at the member (its origin) to the public origin (ProxyPassReverse). */
export function reverseUrl(value: string, memberOrigin: string, publicOrigin: string, prefix: string): string {
  if (!value.startsWith(memberOrigin)) return value;
  const rest = value.slice(memberOrigin.length);
  if (rest !== '' && rest[0] !== '/' && rest[0] !== '?' && rest[0] !== '#') return value;
  return publicOrigin + prefix + rest;
}

/** Refresh: "5; url=http://member/x" → the URL part rewritten. */
export function reverseRefresh(value: string, memberOrigin: string, publicOrigin: string, prefix: string): string {
  const match = /^(\s*\d+\s*[;,]\s*url\s*=\s*['"]?)(.*)$/i.exec(value);
  if (!match) return value;
  return match[1]! + reverseUrl(match[2]!, memberOrigin, publicOrigin, prefix);
}

/** Set-Cookie Domain/Path rewrite (ProxyPassReverseCookieDomain / ProxyPassReverseCookiePath). */
export function rewriteCookie(
  value: string,
  domains: Record<string, string> | undefined,
  paths: Record<string, string> | undefined,
): string {
  let result = value;
  if (domains) {
    result = result.replace(/(;\s*domain=)([^;]*)/i, (all, head: string, domain: string) => {
      const to = domains[domain.trim()] ?? domains[domain.trim().replace(/^\./, '')];
      return to === undefined ? all : head + to;
    });
  }
  if (paths) {
    result = result.replace(/(;\s*path=)([^;]*)/i, (all, head: string, path: string) => {
      const p = path.trim();
      for (const [from, to] of Object.entries(paths)) {
        if (p === from || p.startsWith(from.endsWith('/') ? from : `${from}/`)) {
          const rest = p.slice(from.length);
          return head + (to.endsWith('/') && rest.startsWith('/') ? to + rest.slice(1) : to + rest);
        }
      }
      return all;
    });
  }
  return result;
}
