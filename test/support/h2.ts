// HTTP/2 clients for tests: Node's own (a session per test, requests on it), over TLS to a test proxy.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { once } from 'node:events';

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An h2 session to the https listener on `port` (self-signed certificates accepted). */
export async function connectH2(port: number, servername = 'shop.test'): Promise<ClientHttp2Session> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
  session.on('error', () => {});
  // The server's SETTINGS too: its limits are known before the first request.
  await Promise.all([once(session, 'connect'), once(session, 'remoteSettings')]);
  return session;
}

/** One request on `session`; `authority` defaults to shop.test. */
export function h2Request(
  session: ClientHttp2Session,
  options: { path?: string; method?: string; authority?: string; headers?: OutgoingHttpHeaders; body?: string } = {},
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        ':method': options.method ?? 'GET',
        ':path': options.path ?? '/',
        ':authority': options.authority ?? 'shop.test',
        ...options.headers,
      },
      { endStream: options.body === undefined },
    );
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () =>
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString() }),
    );
    stream.on('error', reject);
    if (options.body !== undefined) stream.end(options.body);
  });
}
