// Bounded loopback load for zero-drop tests: plain clients, and sticky clients walking multi-step
// sessions. Every response is recorded with the member that served it and when it was sent.
import http from 'node:http';

export interface Sample {
  /** performance.now() when the request was sent, and when its response ended. */
  sentAt: number;
  doneAt: number;
  status: number;
  /** The member that answered (its response body's first word), or '' on failure. */
  member: string;
  /** Sticky: the session's id (client-side), and whether this request carried a session cookie. */
  session?: number;
  bound: boolean;
  error?: string;
}

export interface LoadOptions {
  port: number;
  host?: string;
  plainClients: number;
  stickyClients: number;
  /** Requests per sticky session before the user leaves and a new one arrives. */
  stepsPerSession: number;
  /** Pause between a sticky user's steps. */
  thinkMs: number;
  /** Hard bound: the load stops by itself after this long. */
  maxMs: number;
}

export class Load {
  readonly samples: Sample[] = [];
  private running = true;
  private readonly workers: Promise<void>[] = [];
  private readonly agent: http.Agent;
  private nextSession = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: LoadOptions) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.plainClients + options.stickyClients });
    for (let i = 0; i < options.plainClients; i++) this.workers.push(this.plain());
    for (let i = 0; i < options.stickyClients; i++) this.workers.push(this.sticky());
    this.timer = setTimeout(() => (this.running = false), options.maxMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await Promise.all(this.workers);
    this.agent.destroy();
  }

  failures(): Sample[] {
    return this.samples.filter((s) => s.status !== 200);
  }

  /** Longest interval in which no response completed (ms). */
  longestStall(from = 0, to = Infinity): number {
    const ends = this.samples
      .map((s) => s.doneAt)
      .filter((t) => t >= from && t <= to)
      .sort((a, b) => a - b);
    let longest = 0;
    for (let i = 1; i < ends.length; i++) longest = Math.max(longest, ends[i]! - ends[i - 1]!);
    return longest;
  }

  private async plain(): Promise<void> {
    while (this.running) this.samples.push(await this.send(undefined, undefined));
  }

  private async sticky(): Promise<void> {
    while (this.running) {
      const session = this.nextSession++;
      let cookie: string | undefined;
      for (let step = 0; step < this.options.stepsPerSession && this.running; step++) {
        const sample = await this.send(cookie, session);
        this.samples.push(sample);
        cookie ??= sample.setCookie;
        if (this.options.thinkMs > 0) await new Promise((r) => setTimeout(r, this.options.thinkMs));
      }
    }
  }

  private send(cookie: string | undefined, session: number | undefined): Promise<Sample & { setCookie?: string }> {
    const sentAt = performance.now();
    return new Promise((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.options.port,
          path: `/step?s=${session ?? 'none'}`,
          agent: this.agent,
          headers: { host: this.options.host ?? 'example.com', ...(cookie ? { cookie } : {}) },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            const setCookie = res.headers['set-cookie']?.[0]?.split(';')[0];
            resolve({
              sentAt,
              doneAt: performance.now(),
              status: res.statusCode ?? 0,
              member: body.split(' ')[0] ?? '',
              bound: cookie !== undefined,
              ...(session !== undefined ? { session } : {}),
              ...(setCookie ? { setCookie } : {}),
            });
          });
          res.on('error', (err) =>
            resolve({
              sentAt,
              doneAt: performance.now(),
              status: 0,
              member: '',
              bound: cookie !== undefined,
              error: err.message,
            }),
          );
        },
      );
      req.on('error', (err) =>
        resolve({
          sentAt,
          doneAt: performance.now(),
          status: 0,
          member: '',
          bound: cookie !== undefined,
          ...(session !== undefined ? { session } : {}),
          error: err.message,
        }),
      );
      req.end();
    });
  }
}
