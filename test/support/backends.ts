// Small HTTP backends standing in for application servers behind a real load balancer, and a bounded
// load generator. Backends record every request they receive, so a test can tell which member got what
// and when; `?sleep=MS` keeps a request in flight.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { messageOf } from '../../src/errors.js';

export interface Received {
  /** The load generator's sequence number (x-seq), or -1. */
  seq: number;
  /** When the client started the request (x-start, ms since epoch), or -1. */
  start: number;
  path: string;
}

export interface Backend {
  name: string;
  port: number;
  url: string;
  received: Received[];
  close(): Promise<void>;
}

export async function startBackend(name: string): Promise<Backend> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    received.push({
      seq: Number(req.headers['x-seq'] ?? -1),
      start: Number(req.headers['x-start'] ?? -1),
      path: url.pathname,
    });
    const sleep = Number(url.searchParams.get('sleep') ?? 0);
    const answer = () => {
      res.setHeader('x-backend', name);
      res.setHeader('content-type', 'text/plain');
      res.end(name);
    };
    if (sleep > 0) setTimeout(answer, Math.min(sleep, 30_000));
    else answer();
  });
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Backend name (x-backend) → responses. */
  byBackend: Record<string, number>;
}

export interface Load {
  /** Resolves once at least `count` requests have completed (or rejects at the deadline). */
  completed(count: number, timeoutMs?: number): Promise<void>;
  /** Stops issuing requests and resolves with the result when the in-flight ones have finished. */
  stop(): Promise<LoadResult>;
}

/**
 * Sends GET requests to `url` from `concurrency` loops until stop(), at most `maxRequests` in total and
 * for at most `maxMs` — a bounded loopback load. Each request carries x-seq and x-start.
 */
export function startLoad(
  url: string,
  options: { concurrency?: number; maxRequests?: number; maxMs?: number; headers?: Record<string, string> } = {},
): Load {
  const { concurrency = 4, maxRequests = 5000, maxMs = 60_000, headers = {} } = options;
  const result: LoadResult = { ok: 0, failed: 0, errors: [], byBackend: {} };
  const startedAt = Date.now();
  let seq = 0;
  let stopped = false;
  const waiters: { count: number; resolve: () => void }[] = [];
  const notify = () => {
    const done = result.ok + result.failed;
    for (const w of waiters.filter((w) => done >= w.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const loop = async () => {
    while (!stopped && seq < maxRequests && Date.now() - startedAt < maxMs) {
      const mySeq = seq++;
      try {
        const res = await request(url, {
          headers: { ...headers, 'x-seq': String(mySeq), 'x-start': String(Date.now()) },
        });
        await res.body.text();
        const backend = String(res.headers['x-backend'] ?? '?');
        if (res.statusCode === 200) {
          result.ok++;
          result.byBackend[backend] = (result.byBackend[backend] ?? 0) + 1;
        } else {
          result.failed++;
          if (result.errors.length < 10) result.errors.push(`#${mySeq}: HTTP ${res.statusCode}`);
        }
      } catch (err) {
        result.failed++;
        if (result.errors.length < 10) result.errors.push(`#${mySeq}: ${messageOf(err)}`);
      }
      notify();
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    completed: (count, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `load: ${count} requests not completed within ${timeoutMs} ms (${result.ok} ok, ${result.failed} failed)`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
        notify();
      }),
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return result;
    },
  };
}
