// Raw HTTP on a socket, for tests about framing: what a proxy answers to exact bytes, and what a member
// receives, byte for byte.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';

export interface RawOptions {
  /** Send FIN after the bytes. */
  end?: boolean;
  /** Connect with TLS (certificates not verified). */
  tls?: boolean;
  /** More writes after the first, each `gapMs` after the previous one. */
  then?: string[];
  gapMs?: number;
}

/**
 * Writes raw bytes on a fresh connection (then FIN when `end`); resolves with everything the peer sent
 * before it closed the connection. A peer that keeps it open is cut after 5 s, and the test then fails
 * on the missing answer.
 */
export async function rawExchange(port: number, bytes: string, options: RawOptions = {}): Promise<string> {
  const socket = options.tls
    ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
    : net.connect(port, '127.0.0.1');
  await once(socket, options.tls ? 'secureConnect' : 'connect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  socket.setTimeout(5000, () => socket.destroy());
  const closed = once(socket, 'close');
  if (options.end && !options.then) socket.end(bytes);
  else socket.write(bytes);
  for (const [i, more] of (options.then ?? []).entries()) {
    await new Promise((r) => setTimeout(r, options.gapMs ?? 0));
    if (socket.destroyed) break;
    if (options.end && i === options.then!.length - 1) socket.end(more);
    else socket.write(more);
  }
  await closed;
  return text;
}

/** Status codes of the responses in a reply (one follows the previous body without a line break). */
export function statuses(reply: string): number[] {
  return [...reply.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/**
 * A member on a plain TCP socket: records every byte it receives (no HTTP parser in the way, so what a
 * proxy let through shows as it was sent) and answers each request it can frame: a 403 to an upgrade
 * request (a member refusing it), `200 ok` to anything else.
 */
export interface RawMember {
  port: number;
  url: string;
  /** Every byte received, on every connection, in order. */
  bytes(): string;
  close(): Promise<void>;
}

const REFUSED = 'HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n';
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** Where the request at the start of `text` ends (its head, and a Content-Length or chunked body), or -1. */
function requestEnd(text: string): number {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return -1;
  const head = text.slice(0, headEnd);
  if (/^transfer-encoding:.*chunked/im.test(head)) {
    const last = text.indexOf('0\r\n\r\n', headEnd + 4);
    return last < 0 ? -1 : last + 5;
  }
  const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
  return text.length >= headEnd + 4 + length ? headEnd + 4 + length : -1;
}

export async function startRawMember(): Promise<RawMember> {
  let received = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (data: Buffer) => {
      const text = data.toString('latin1');
      received += text;
      pending += text;
      for (let end = requestEnd(pending); end >= 0; end = requestEnd(pending)) {
        const upgrade = /^upgrade:/im.test(pending.slice(0, end));
        pending = pending.slice(end);
        socket.write(upgrade ? REFUSED : OK);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    bytes: () => received,
    close: async () => {
      const closed = once(server, 'close');
      server.close();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
