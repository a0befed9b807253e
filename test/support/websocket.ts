// WebSocket for tunnel tests: an echo member that answers handshakes as RFC 6455 §4.2.2 says and sends
// every small text frame back, and the frames a client writes.
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept that answers `key`. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}${GUID}`).digest('base64');
}

/** A masked text frame (client to server), payload under 126 bytes. */
export function maskedFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

/** The payload of an unmasked text frame (server to client), under 126 bytes. */
export function frameText(data: Buffer): string {
  return data.subarray(2, 2 + (data[1]! & 0x7f)).toString();
}

export interface EchoOptions {
  /** Sees each handshake first; returns true when it answered the socket itself. */
  intercept?: (req: IncomingMessage, socket: Duplex) => boolean;
  /** Header lines for the 101 besides Upgrade, Connection and the accept, each ending in CRLF. */
  headers?: (req: IncomingMessage) => string;
  /** The key the accept answers (default: the request's Sec-WebSocket-Key). */
  key?: (req: IncomingMessage) => string;
}

/** Makes `server` a WebSocket echo member: a 101 for each handshake, then each text frame sent back. */
export function echoWebSockets(server: Server, options: EchoOptions = {}): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    if (options.intercept?.(req, socket)) return;
    const key = options.key?.(req) ?? String(req.headers['sec-websocket-key']);
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${options.headers?.(req) ?? ''}\r\n`,
    );
    socket.on('data', (data: Buffer) => {
      const length = data[1]! & 0x7f;
      const mask = data.subarray(2, 6);
      const payload = data.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]!);
      socket.write(Buffer.concat([Buffer.from([0x81, length]), payload]));
    });
  });
}
