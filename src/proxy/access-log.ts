// Access log in Apache combined format or JSON lines, to a file or stdout. Lines are collected in
// memory and written in one batch per tick, so the hot path never waits on I/O.
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';

export interface AccessEntry {
  client: string;
  method: string;
  path: string;
  httpVersion: string;
  status: number;
  bytes: number;
  referer: string | undefined;
  userAgent: string | undefined;
  host: string;
  site: string;
  member: string | undefined;
  durationMs: number;
  requestId: string;
}

/** The status logged for a request whose client left before any answer (nginx's "client closed request"). */
export const CLIENT_LEFT = 499;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Lines kept in memory at most when the target is slower than traffic; beyond, lines are dropped. */
const MAX_PENDING = 100_000;

export class AccessLog {
  private pending: string[] = [];
  private scheduled = false;
  private lastSecond = 0;
  private lastStamp = '';
  dropped = 0;

  constructor(
    private readonly out: Writable,
    private readonly format: 'combined' | 'json',
    private readonly ownsStream: boolean,
  ) {}

  static open(target: string, format: 'combined' | 'json', baseDir: string): AccessLog | undefined {
    if (target === 'off') return undefined;
    if (target === 'stdout') return new AccessLog(process.stdout, format, false);
    return new AccessLog(createWriteStream(resolve(baseDir, target), { flags: 'a' }), format, true);
  }

  private stamp(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.lastSecond) {
      const d = new Date(second * 1000);
      const p = (n: number) => String(n).padStart(2, '0');
      this.lastStamp = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
      this.lastSecond = second;
    }
    return this.lastStamp;
  }

  write(e: AccessEntry, now: number): void {
    if (this.pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    const q = (s: string | undefined) => (s === undefined ? '-' : s.replace(/["\\]/g, (c) => `\\${c}`));
    this.pending.push(
      this.format === 'json'
        ? JSON.stringify({ time: new Date(now).toISOString(), ...e })
        : `${e.client} - - [${this.stamp(now)}] "${e.method} ${q(e.path)} HTTP/${e.httpVersion}" ${e.status} ${e.bytes || '-'} "${q(e.referer)}" "${q(e.userAgent)}"`,
    );
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    this.out.write(text);
  }

  close(): Promise<void> {
    this.flush();
    if (!this.ownsStream) return Promise.resolve();
    return new Promise((done) => this.out.end(done));
  }
}
