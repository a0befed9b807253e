// The HTTPS loads that wrk cannot give: a new TLS connection per request with a full handshake each
// time, and HTTP/2 through h2load.
//
// Why not `wrk -H 'Connection: close'` for new connections: wrk keeps one OpenSSL object per connection
// slot and reconnects with SSL_clear(), which keeps the last session, so it offers that session again
// and about half of its handshakes are resumed (counted with isSessionReused() on a Node TLS server).
// h2load resumes almost all of them. The client below never offers a session.
import { execFile } from 'node:child_process';
import tls from 'node:tls';

/** What one HTTPS run measured. */
export interface HttpsCount {
  /** Answers received (any status). */
  requests: number;
  /** Failed requests and non-2xx answers. */
  errors: number;
  rps: number;
  /** New-connection load: handshakes the server resumed (it expects none). */
  resumed?: number;
}

/** Stops one request after this long (a stalled peer becomes an error, not a stuck run). */
const REQUEST_TIMEOUT_MS = 10_000;
const REQUEST = 'GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n';

/** One request on a new TLS connection, offering no session: resolves with whether it was a 2xx and resumed. */
function oneConnection(port: number): Promise<{ ok: boolean; resumed: boolean }> {
  return new Promise((resolve) => {
    let head = '';
    let resumed = false;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'bench.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy(new Error('timeout')));
    socket.once('secureConnect', () => {
      resumed = socket.isSessionReused();
      socket.write(REQUEST);
    });
    socket.on('data', (chunk: Buffer) => {
      if (head.length < 12) head += chunk.toString('latin1', 0, 12);
    });
    // The server closes after its answer (Connection: close); the answer was whole if it closed cleanly.
    socket.once('end', () => socket.destroy());
    socket.once('close', (hadError) => resolve({ ok: !hadError && /^HTTP\/1\.1 2\d\d/.test(head), resumed }));
    socket.once('error', () => undefined);
  });
}

/**
 * Opens a new TLS connection for every request from `connections` loops for `seconds`; stops early when
 * `signal` aborts.
 */
export async function newConnectionLoad(port: number, seconds: number, connections: number, signal: AbortSignal): Promise<HttpsCount> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let requests = 0;
  let errors = 0;
  let resumed = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end && !signal.aborted) {
        const result = await oneConnection(port);
        requests++;
        if (!result.ok) errors++;
        if (result.resumed) resumed++;
      }
    }),
  );
  return { requests, errors, resumed, rps: requests / ((performance.now() - started) / 1000) };
}

/** HTTP/2 with h2load: `connections` connections with `streams` requests in flight on each, for `seconds`. */
export function runH2load(binary: string, port: number, seconds: number, connections: number, streams: number, signal: AbortSignal): Promise<HttpsCount> {
  const args = ['-t1', `-c${connections}`, `-m${streams}`, `-D${seconds}`, `https://127.0.0.1:${port}/`];
  return new Promise((resolve, reject) => {
    execFile(binary, args, { signal }, (error, stdout) => {
      if (error) return reject(error);
      // h2load falls back to HTTP/1.1 when the server does not take h2: that would not be this row's figure.
      const protocol = /Application protocol: (\S+)/.exec(stdout)?.[1];
      if (protocol !== 'h2') return reject(new Error(`h2load negotiated ${protocol ?? 'no protocol'}, not h2:\n${stdout}`));
      const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
      if (!counts) return reject(new Error(`unexpected h2load output:\n${stdout}`));
      // "failed" counts errored and timed-out requests and answers other than 2xx and 3xx.
      resolve({ requests: Number(counts[3]), errors: Number(counts[5]), rps: Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0) });
    });
  });
}
