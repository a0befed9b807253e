// Dashboard sign-in sessions: the admin token is exchanged once for a random session id held in an
// HttpOnly cookie, so the token itself never sits in the browser's storage. Each session carries its own
// CSRF token, which the page sends back in a header on every state-changing request.
import { randomBytes } from 'node:crypto';
import { FailureLimiter, type WrongToken } from '../admin/failure-limiter.js';
import { tokenMatches } from '../admin/token.js';

export interface Session {
  id: string;
  csrf: string;
  /** Epoch ms after which the session is gone. */
  expires: number;
  /** Client address at sign-in, for the audit log. */
  from: string;
}

export interface SessionOptions {
  /** How long a session lasts after sign-in. */
  ttlMs: number;
  /** Failed sign-ins per address within `failureWindowMs` before further wrong tokens are refused. */
  maxFailures: number;
  failureWindowMs: number;
  /** Bounds memory: the oldest sessions are dropped beyond this. */
  maxSessions: number;
}

export const DEFAULT_SESSION_OPTIONS: SessionOptions = {
  ttlMs: 12 * 3600_000,
  maxFailures: 5,
  failureWindowMs: 60_000,
  maxSessions: 1000,
};

export type SignInResult = { ok: true; session: Session } | { ok: false; wrong: WrongToken };

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly failures: FailureLimiter;

  constructor(
    private readonly token: string,
    private readonly options: SessionOptions = DEFAULT_SESSION_OPTIONS,
    private readonly now: () => number = Date.now,
  ) {
    this.failures = new FailureLimiter(options.maxFailures, options.failureWindowMs, now);
  }

  signIn(presented: string, from: string): SignInResult {
    const now = this.now();
    // Only wrong tokens are throttled: the right one always signs in (failure-limiter.ts).
    if (!tokenMatches(presented, this.token)) return { ok: false, wrong: this.failures.wrong(from) };
    this.prune(now);
    if (this.sessions.size >= this.options.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      expires: now + this.options.ttlMs,
      from,
    };
    this.sessions.set(session.id, session);
    return { ok: true, session };
  }

  /** The live session with this id, or undefined (unknown or expired). */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expires <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  signOut(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private prune(now: number): void {
    for (const [id, session] of this.sessions) if (session.expires <= now) this.sessions.delete(id);
    this.failures.prune();
  }
}
