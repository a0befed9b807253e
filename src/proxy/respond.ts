// The member's answer, on its way to the client: response headers rewritten (Location, cookies,
// hop-by-hop), the sticky cookie and session bookkeeping, the drain notice or preview banner, then the
// body in one write or streamed.
import type { ForwardContext } from './forward.js';
import type { Exchange } from './exchange.js';
import { cookieValue, DEFAULT_ROUTE_COOKIE, stickyCookie } from '../balance/sticky.js';
import { BannerInjector, bannerHtml, minutesLeft } from './drain-notice.js';
import { connectionNamed, isHopByHop, reverseRefresh, reverseUrl, rewriteCookie } from './headers.js';
import { countStatus } from './snapshot.js';
import { messageOf } from '../errors.js';

/** Where the client reached us, for rewriting member URLs (ProxyPassReverse). */
function publicOrigin(exchange: Exchange): string {
  return `${exchange.secure ? 'https' : 'http'}://${exchange.req.headers.host ?? exchange.match.host}`;
}

export function respond(ctx: ForwardContext, exchange: Exchange): void {
  const { req, res, match, snap, secure, preview } = exchange;
  const { member, session, newBinding } = exchange.choice!;
  const response = exchange.response!;
  const { site, route } = match;
  const config = snap.config;
  const status = response.status;
  member.observe(status, exchange.latencyMs);
  if (config.passive.statuses.includes(status)) member.failed(`answered ${status}`, ctx.passive(), Date.now());
  else member.succeeded();
  exchange.servedBy = member.key;
  const now = Date.now();
  const sticky = route.sticky;
  const sessions = ctx.sessions;
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
        out.push(name, reverseUrl(value, memberOrigin, publicOrigin(exchange), prefix));
        continue;
      case 'refresh':
        out.push(name, reverseRefresh(value, memberOrigin, publicOrigin(exchange), prefix));
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
      const value = ctx.signer.issue(member.key);
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
    exchange.finish();
    return;
  }
  // A body that has all arrived goes out with the headers in one write; anything else is streamed.
  const whole = banner ? undefined : response.whole?.();
  try {
    res.writeHead(status, response.statusMessage || undefined, out);
  } catch (error) {
    // A header Node refuses to send (bad characters from the member): answer 502 instead.
    if (whole === undefined) response.body.destroy();
    exchange.finish();
    ctx.logger.warn(
      { member: member.key, requestId: match.requestId, err: messageOf(error) },
      'member response headers refused',
    );
    exchange.fail(502);
    return;
  }
  countStatus(site, status);
  if (whole !== undefined) {
    exchange.finish();
    res.end(whole);
    return;
  }
  exchange.streaming(response.body);
  response.body.once('end', () => exchange.finish());
  response.body.once('error', (error) => {
    exchange.finish();
    ctx.logger.warn({ member: member.key, requestId: match.requestId, err: error.message }, 'response body failed');
    res.destroy();
  });
  (banner ? response.body.pipe(new BannerInjector(banner)) : response.body).pipe(res);
}
