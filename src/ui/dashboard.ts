// The dashboard on the admin listener: the page and its assets at `/` (from the package's ui/ folder),
// sign-in with the admin token into an HttpOnly SameSite=Strict session cookie, and a cookie
// authenticator so the page calls the same /api/ routes as the CLI. State-changing calls made with the
// cookie must carry the session's CSRF token in a header; bearer-token calls are unaffected.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { z } from 'zod';
import { cookieValue } from '../balance/sticky.js';
import { answerWrongToken, remoteAddress, sendJson, type AdminServer } from '../admin/server.js';
import type { Actor, AuditLog } from '../control/audit.js';
import { HttpError } from '../admin/router.js';
import { tokenMatches } from '../admin/token.js';
import { DEFAULT_SESSION_OPTIONS, SessionStore, type Session, type SessionOptions } from './sessions.js';

export const SESSION_COOKIE = 'dayshift_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface DashboardOptions {
  /** The admin token (the bearer token of the API). */
  token: string;
  logger?: Logger;
  /** Where wrong sign-in tokens are recorded. */
  audit?: AuditLog;
  sessions?: Partial<SessionOptions>;
}

/** The package's ui/ folder, found from this compiled file (dist/src/ui/) so no absolute path is stored. */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Asset names the page may ask for: flat, no dots but the extension, so no path can escape ui/. */
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(js|css|svg|png|ico)$/;

// The page needs nothing from elsewhere; the policy makes any injected script or outside request fail.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

interface Asset {
  body: Buffer;
  etag: string;
  type: string;
}

export function registerDashboard(server: AdminServer, options: DashboardOptions): void {
  const sessions = new SessionStore(options.token, { ...DEFAULT_SESSION_OPTIONS, ...options.sessions });
  // Only files that exist are kept, so asking for made-up names cannot grow the cache.
  const assets = new Map<string, Asset>();
  const asset = async (name: string): Promise<Asset | undefined> => {
    const cached = assets.get(name);
    if (cached) return cached;
    const found = await loadAsset(join(UI_DIR, name));
    if (found) assets.set(name, found);
    return found;
  };

  server.addAuthenticator((req) => {
    const session = sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
    if (!session) return undefined;
    if (!SAFE_METHODS.has(req.method ?? 'GET')) checkCsrf(req, session);
    return { who: 'dashboard:admin', from: remoteAddress(req) } satisfies Actor;
  });

  const r = server.router;
  r.add(
    { method: 'GET', path: '/', summary: 'The dashboard page', auth: false, tag: 'dashboard', response: 'HTML' },
    async ({ req, res }) => {
      const page = await asset('index.html');
      if (!page) throw new HttpError(500, 'the dashboard files are missing from the ui/ folder');
      const session = sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
      // The CSRF token rides in a meta tag, so the page is per-session and never cached.
      const html = page.body
        .toString('utf8')
        .replace('<meta name="csrf-token" content="">', `<meta name="csrf-token" content="${session?.csrf ?? ''}">`);
      res.writeHead(200, {
        'content-type': page.type,
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(html),
        ...SECURITY_HEADERS,
      });
      res.end(html);
      return undefined;
    },
  );

  r.add(
    {
      method: 'GET',
      path: '/ui/:file',
      summary: "The dashboard's scripts, styles and icons",
      auth: false,
      tag: 'dashboard',
      response: 'A file',
    },
    async ({ req, res, params }) => {
      const name = params.file!;
      const found = ASSET_NAME.test(name) ? await asset(name) : undefined;
      if (!found) throw new HttpError(404, `no such dashboard file: ${name}`);
      // Revalidated on every load (cheap: a 304), so an upgraded Dayshift never runs a stale script.
      const headers = {
        'content-type': found.type,
        'cache-control': 'no-cache',
        etag: found.etag,
        'x-content-type-options': 'nosniff',
      };
      if (req.headers['if-none-match'] === found.etag) {
        res.writeHead(304, headers);
        res.end();
        return undefined;
      }
      res.writeHead(200, { ...headers, 'content-length': found.body.length });
      res.end(found.body);
      return undefined;
    },
  );

  r.add(
    {
      method: 'POST',
      path: '/ui/session',
      summary: 'Sign in to the dashboard with the admin token: sets an HttpOnly session cookie, returns the CSRF token',
      body: z.strictObject({ token: z.string().min(1).max(4096) }),
      auth: false,
      tag: 'dashboard',
    },
    ({ req, res, body }) => {
      const from = remoteAddress(req);
      const result = sessions.signIn(body.token, from);
      if (!result.ok) {
        answerWrongToken(result.wrong, from, 'dashboard sign-in', res, options);
        throw new HttpError(401, 'wrong admin token');
      }
      const { session } = result;
      options.logger?.info({ from }, 'dashboard sign-in');
      res.setHeader('set-cookie', sessionCookie(req, session.id, Math.floor((session.expires - Date.now()) / 1000)));
      return { csrf: session.csrf, expires: new Date(session.expires).toISOString() };
    },
  );

  r.add(
    { method: 'DELETE', path: '/ui/session', summary: 'Sign out of the dashboard', auth: false, tag: 'dashboard' },
    ({ req, res }) => {
      const session = sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
      if (session) {
        checkCsrf(req, session);
        sessions.signOut(session.id);
      }
      res.setHeader('set-cookie', sessionCookie(req, '', 0));
      sendJson(res, 200, { ok: true });
      return undefined;
    },
  );
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function checkCsrf(req: IncomingMessage, session: Session): void {
  const presented = req.headers[CSRF_HEADER];
  if (typeof presented !== 'string' || !tokenMatches(presented, session.csrf)) {
    throw new HttpError(
      403,
      `missing or wrong CSRF token: a change made with the dashboard cookie needs the ${CSRF_HEADER} header`,
    );
  }
  // Belt and braces: a browser names the page that sent a request; it must be this listener.
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && hostOf(origin) !== req.headers.host) {
    throw new HttpError(403, `request from another origin (${origin}) refused`);
  }
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function sessionCookie(req: IncomingMessage, value: string, maxAgeSeconds: number): string {
  const secure = 'encrypted' in req.socket ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

async function loadAsset(path: string): Promise<Asset | undefined> {
  try {
    const body = await readFile(path);
    return {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      type: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
