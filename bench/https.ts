// What the HTTPS rows need beyond wrk: HTTP/2 through h2load, and proof that the new-connection row does
// a full handshake for every request.
//
// wrk with `Connection: close` opens a new connection per request, but it keeps one OpenSSL object per
// connection slot and reconnects after SSL_clear(), which keeps the last session: it offers that session
// again, and a server that takes it resumes about half of the handshakes (counted with isSessionReused()
// on a Node TLS server). So the servers of that row refuse resumption (resumptionOff() for Dayshift,
// `no-tls-tickets` and no session cache for HAProxy), and sessionResumed() checks it before the row runs.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';

/** What one HTTP/2 run measured. */
export interface H2Count {
  /** Requests completed (any status). */
  requests: number;
  /** Failed requests: errors, timeouts and answers other than 2xx and 3xx. */
  errors: number;
  rps: number;
}

/**
 * Writes an OpenSSL configuration that makes a Node process issue no TLS session tickets (SSL_OP_NO_TICKET:
 * with TLS 1.3 it then issues stateful tickets, which Node keeps no cache for), and returns the node
 * argument that loads it. Node reads the `nodejs_conf` section of the file.
 */
export async function resumptionOff(dir: string): Promise<string> {
  const file = join(dir, 'no-resumption.cnf');
  await writeFile(
    file,
    'nodejs_conf = bench_init\n[bench_init]\nssl_conf = bench_ssl\n[bench_ssl]\nsystem_default = bench_tls\n[bench_tls]\nOptions = -SessionTicket\n',
  );
  return `--openssl-config=${file}`;
}

/** One request on a new TLS connection, offering `session` when given: its session afterwards, and whether it resumed. */
function exchange(port: number, session?: Buffer): Promise<{ session: Buffer | undefined; resumed: boolean }> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    let resumed = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(session ? { session } : {}),
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer from 127.0.0.1:${port} in 10 s`)));
    // TLS 1.3 tickets come after the handshake: the answer is read to the end so that they have arrived.
    socket.on('session', (s: Buffer) => (latest = s));
    socket.once('secureConnect', () => {
      resumed = socket.isSessionReused();
      socket.write('GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n');
    });
    socket.resume();
    socket.once('error', reject);
    socket.once('close', (hadError) => {
      if (!hadError) resolve({ session: latest, resumed });
    });
  });
}

/** Whether the TLS server on `port` resumes a session: a second connection offers the first one's. */
export async function sessionResumed(port: number): Promise<boolean> {
  const first = await exchange(port);
  return first.session ? (await exchange(port, first.session)).resumed : false;
}

/** HTTP/2 with h2load: `connections` connections with `streams` requests in flight on each, for `seconds`. */
export function runH2load(
  binary: string,
  port: number,
  seconds: number,
  connections: number,
  streams: number,
  signal: AbortSignal,
): Promise<H2Count> {
  const args = ['-t1', `-c${connections}`, `-m${streams}`, `-D${seconds}`, `https://127.0.0.1:${port}/`];
  return new Promise((resolve, reject) => {
    execFile(binary, args, { signal }, (error, stdout) => {
      if (error) return reject(error);
      // h2load falls back to HTTP/1.1 when the server does not take h2: that would not be this row's figure.
      const protocol = /Application protocol: (\S+)/.exec(stdout)?.[1];
      if (protocol !== 'h2')
        return reject(new Error(`h2load negotiated ${protocol ?? 'no protocol'}, not h2:\n${stdout}`));
      const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(stdout);
      if (!counts) return reject(new Error(`unexpected h2load output:\n${stdout}`));
      resolve({
        requests: Number(counts[3]),
        errors: Number(counts[5]),
        rps: Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0),
      });
    });
  });
}
