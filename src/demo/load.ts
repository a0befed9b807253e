// Synthetic users for the demo and the tests: each walks through the checkout (cart → address →
// payment → done) with its own cookie, pausing between pages like a person. Bounded in users, time and
// checkouts. Counts requests, failed requests (5xx or no answer) and cut sessions: checkouts that could
// not complete.
import http from 'node:http';
import { delay } from '../delay.js';
import { sessionCookie, SESSION_COOKIE } from './app.js';
import { messageOf } from '../errors.js';

export interface LoadOptions {
  /** The proxy's public origin, e.g. http://127.0.0.1:8080. Loopback only. */
  origin: string;
  /** Host header (default: the origin's). */
  host?: string;
  /** Users walking through checkouts at the same time. */
  users: number;
  /** Pause between pages of one checkout. */
  thinkMs: number;
  /** Stop starting checkouts after this long (default 10 minutes: a safety bound). */
  maxDurationMs?: number;
  /** Stop starting checkouts after this many in total (default 100 000). */
  maxCheckouts?: number;
  requestTimeoutMs?: number;
}

export interface LoadResult {
  requests: number;
  /** 5xx answers and requests that got no answer. */
  failed: number;
  checkoutsStarted: number;
  checkoutsCompleted: number;
  /** Checkouts that could not complete (a failed request or a lost session). */
  cut: number;
  /** Completed checkouts by the version that served their last page. */
  completedByVersion: Record<string, number>;
  /** The first few problems, for the report. */
  problems: string[];
}

interface Answer {
  status: number;
  body: string;
  setCookie: string | undefined;
  version: string | undefined;
}

export class LoadGenerator {
  readonly result: LoadResult = {
    requests: 0,
    failed: 0,
    checkoutsStarted: 0,
    checkoutsCompleted: 0,
    cut: 0,
    completedByVersion: {},
    problems: [],
  };
  private readonly agent: http.Agent;
  private stopping = false;
  private users: Promise<void>[] = [];
  private readonly startedAt = Date.now();
  private readonly origin: URL;

  constructor(private readonly options: LoadOptions) {
    this.origin = new URL(options.origin);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(this.origin.hostname))
      throw new Error(`the load generator only sends to loopback, not ${this.origin.hostname}`);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(1, options.users) });
  }

  start(): this {
    for (let i = 0; i < this.options.users; i++) this.users.push(this.user(i));
    return this;
  }

  /** Waits until the users stop by themselves (maxCheckouts or maxDurationMs reached). */
  async finished(): Promise<LoadResult> {
    await Promise.all(this.users);
    this.agent.destroy();
    return this.result;
  }

  /** Stops starting checkouts, lets the ones under way finish, and returns the figures. */
  async stop(): Promise<LoadResult> {
    this.stopping = true;
    await Promise.all(this.users);
    this.agent.destroy();
    return this.result;
  }

  private more(): boolean {
    if (this.stopping) return false;
    if (Date.now() - this.startedAt > (this.options.maxDurationMs ?? 600_000)) return false;
    return this.result.checkoutsStarted < (this.options.maxCheckouts ?? 100_000);
  }

  private async user(index: number): Promise<void> {
    // Users start spread out, so the checkouts are at different steps at any moment.
    await delay((index * this.options.thinkMs) / Math.max(1, this.options.users));
    while (this.more()) await this.checkout();
  }

  private async checkout(): Promise<void> {
    this.result.checkoutsStarted++;
    const steps: [string, string, string | undefined, string][] = [
      ['GET', '/cart', undefined, 'Cart'],
      ['POST', '/address', 'address=1+Main+Street', 'Address'],
      ['POST', '/payment', 'card=4242', 'Payment'],
      ['GET', '/done', undefined, 'Thank you'],
    ];
    let cookie: string | undefined;
    for (const [i, [method, path, body, title]] of steps.entries()) {
      if (i > 0) await delay(this.options.thinkMs);
      let answer: Answer;
      try {
        answer = await this.send(method, path, body, cookie);
      } catch (err) {
        this.result.failed++;
        return this.cut(`${method} ${path}: ${messageOf(err)}`);
      }
      if (answer.status >= 500) this.result.failed++;
      if (answer.status !== 200 || !answer.body.includes(`<h1>${title}</h1>`)) {
        return this.cut(`${method} ${path} answered ${answer.status}${answer.status === 409 ? ' (session lost)' : ''}`);
      }
      cookie = sessionCookie(answer.setCookie) ?? cookie;
      if (i === steps.length - 1) {
        this.result.checkoutsCompleted++;
        const v = answer.version ?? 'unknown';
        this.result.completedByVersion[v] = (this.result.completedByVersion[v] ?? 0) + 1;
      }
    }
  }

  private cut(problem: string): void {
    this.result.cut++;
    if (this.result.problems.length < 20) this.result.problems.push(problem);
  }

  private send(method: string, path: string, body: string | undefined, session: string | undefined): Promise<Answer> {
    this.result.requests++;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.origin.hostname.replace(/^\[|\]$/g, ''),
          port: this.origin.port,
          path,
          method,
          agent: this.agent,
          timeout: this.options.requestTimeoutMs ?? 30_000,
          headers: {
            host: this.options.host ?? this.origin.host,
            ...(session ? { cookie: `${SESSION_COOKIE}=${session}` } : {}),
            ...(body !== undefined
              ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const setCookie = res.headers['set-cookie']?.find((c) => c.startsWith(`${SESSION_COOKIE}=`))?.split(';')[0];
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              setCookie,
              version: headerText(res.headers['x-demo-version']),
            });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
