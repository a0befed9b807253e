// Session stickiness. Route mode reads the member's route from the suffix of the application's session
// id (Tomcat jvmRoute: JSESSIONID=ABC.a1 or ;jsessionid=ABC.a1). Cookie mode sets the proxy's own cookie,
// naming the member and a random session id, signed with HMAC so that a client cannot pick a member.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StickyConfig } from '../config/schema.js';
import type { MemberKey } from '../model.js';

export const DEFAULT_ROUTE_COOKIE = 'JSESSIONID';
export const DEFAULT_PROXY_COOKIE = 'DAYSHIFT_STICKY';

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let from = 0;
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at < 0) return undefined;
    const before = at === 0 ? ';' : header[at - 1]!;
    const end = at + name.length;
    if ((before === ';' || before === ' ') && header[end] === '=') {
      const stop = header.indexOf(';', end + 1);
      return header.slice(end + 1, stop < 0 ? undefined : stop).trim();
    }
    from = end;
  }
  return undefined;
}

/** `;name=value` in a path (before the query), as servlet containers write session ids into URLs. */
export function pathParam(path: string, name: string): string | undefined {
  const at = path.indexOf(`;${name}=`);
  if (at < 0) return undefined;
  const start = at + name.length + 2;
  let end = start;
  while (end < path.length && path[end] !== '?' && path[end] !== ';' && path[end] !== '/' && path[end] !== '#') end++;
  return path.slice(start, end);
}

export interface BoundSession {
  /** Route mode: the member's route id; cookie mode: the member key. */
  target: string;
  /** The session id reported to the session observer. */
  session: string;
}

/** Route mode: the session and route named by the request, if any. */
export function routeSession(
  sticky: StickyConfig,
  cookieHeader: string | undefined,
  path: string,
): BoundSession | undefined {
  const value =
    cookieValue(cookieHeader, sticky.cookie ?? DEFAULT_ROUTE_COOKIE) ??
    pathParam(path, sticky.path_param ?? (sticky.cookie ?? DEFAULT_ROUTE_COOKIE).toLowerCase());
  if (!value) return undefined;
  const dot = value.lastIndexOf('.');
  if (dot < 0 || dot === value.length - 1) return undefined;
  return { target: value.slice(dot + 1), session: value };
}

/** Signs and verifies the proxy's sticky cookie, and preview links (src/proxy/preview.ts). */
export class StickySigner {
  constructor(private readonly secret: string) {}

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url').slice(0, 22);
  }

  /** `payload.MAC`: open() takes the MAC after the last ".", so the payload may hold dots of its own. */
  sign(payload: string): string {
    return `${payload}.${this.mac(payload)}`;
  }

  /** The payload of a value sign() made with this secret; undefined when absent, malformed or forged. */
  open(value: string | undefined): string | undefined {
    if (!value) return undefined;
    const last = value.lastIndexOf('.');
    if (last < 0) return undefined;
    const payload = value.slice(0, last);
    const given = Buffer.from(value.slice(last + 1));
    const expected = Buffer.from(this.mac(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return payload;
  }

  /** A cookie value binding a new session to `member`. */
  issue(member: MemberKey, session = randomBytes(12).toString('base64url')): string {
    return this.sign(`${Buffer.from(member).toString('base64url')}.${session}`);
  }

  /** The member and session of a valid cookie value; undefined when absent, malformed or forged. */
  verify(value: string | undefined): BoundSession | undefined {
    const payload = this.open(value);
    if (payload === undefined) return undefined;
    const dot = payload.indexOf('.');
    if (dot < 0) return undefined;
    return { target: Buffer.from(payload.slice(0, dot), 'base64url').toString(), session: payload.slice(dot + 1) };
  }
}

/** The Set-Cookie header value for the proxy's sticky cookie. */
export function stickyCookie(sticky: StickyConfig, value: string, secureRequest: boolean): string {
  let cookie = `${sticky.cookie ?? DEFAULT_PROXY_COOKIE}=${value}; Path=/`;
  if (sticky.max_age !== undefined) cookie += `; Max-Age=${Math.floor(sticky.max_age / 1000)}`;
  if (sticky.secure ?? secureRequest) cookie += '; Secure';
  if (sticky.http_only) cookie += '; HttpOnly';
  cookie += `; SameSite=${sticky.same_site}`;
  return cookie;
}
