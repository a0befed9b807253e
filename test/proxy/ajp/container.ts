// The container's side of AJP13, written independently of src/proxy/ajp for tests: decodes what the proxy
// sends (Forward Request, body packets, CPing) and encodes what a container answers. A scripted fake
// container on loopback serves the cases real Tomcat cannot be made to produce (garbage, truncation).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ForwardRequest } from '../../../src/proxy/ajp/encoder.js';

const METHODS = [
  'OPTIONS',
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'TRACE',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'ACL',
  'REPORT',
  'VERSION-CONTROL',
  'CHECKIN',
  'CHECKOUT',
  'UNCHECKOUT',
  'SEARCH',
  'MKWORKSPACE',
  'UPDATE',
  'LABEL',
  'MERGE',
  'BASELINE-CONTROL',
  'MKACTIVITY',
];
const REQUEST_HEADERS = [
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'authorization',
  'connection',
  'content-type',
  'content-length',
  'cookie',
  'cookie2',
  'host',
  'pragma',
  'referer',
  'user-agent',
];
const RESPONSE_HEADERS = [
  'content-type',
  'content-language',
  'content-length',
  'date',
  'last-modified',
  'location',
  'set-cookie',
  'set-cookie2',
  'servlet-engine',
  'status',
  'www-authenticate',
];

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  byte(): number {
    if (this.pos >= this.buf.length) throw new Error('read past end');
    return this.buf[this.pos++]!;
  }
  int(): number {
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  str(length = this.int()): string | null {
    if (length === 0xffff) return null;
    const v = this.buf.toString('latin1', this.pos, this.pos + length);
    if (this.buf[this.pos + length] !== 0) throw new Error('string not NUL-terminated');
    this.pos += length + 1;
    return v;
  }
}

/** Splits proxy → container bytes into payloads (magic 0x1234 checked). */
export function splitProxyPackets(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.readUInt16BE(pos) !== 0x1234) throw new Error(`bad magic at ${pos}`);
    const length = bytes.readUInt16BE(pos + 2);
    out.push(bytes.subarray(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  return out;
}

/** Decodes a Forward Request payload back into the encoder's input shape. */
export function decodeForwardRequest(payload: Buffer): ForwardRequest {
  const r = new Reader(payload);
  if (r.byte() !== 2) throw new Error('not a Forward Request');
  const methodCode = r.byte();
  const req: ForwardRequest = {
    method: methodCode === 0xff ? '' : METHODS[methodCode - 1]!,
    protocol: r.str()!,
    uri: r.str()!,
    remoteAddr: r.str()!,
    remoteHost: r.str(),
    serverName: r.str()!,
    serverPort: r.int(),
    isSsl: r.byte() === 1,
    headers: [],
    attributes: [],
  };
  const count = r.int();
  for (let i = 0; i < count; i++) {
    const first = r.int();
    const name = first >> 8 === 0xa0 ? REQUEST_HEADERS[(first & 0xff) - 1]! : r.str(first)!;
    req.headers.push([name, r.str()!]);
  }
  while (true) {
    const code = r.byte();
    if (code === 0xff) break;
    switch (code) {
      case 0x05:
        req.queryString = r.str()!;
        break;
      case 0x06:
        req.route = r.str()!;
        break;
      case 0x07:
        req.sslCert = r.str()!;
        break;
      case 0x08:
        req.sslCipher = r.str()!;
        break;
      case 0x09:
        req.sslSession = r.str()!;
        break;
      case 0x0a:
        req.attributes.push([r.str()!, r.str()!]);
        break;
      case 0x0b:
        req.sslKeySize = r.int();
        break;
      case 0x0c:
        req.secret = r.str()!;
        break;
      case 0x0d:
        req.method = r.str()!;
        break;
      default:
        throw new Error(`unknown attribute ${code}`);
    }
  }
  if (r.pos !== payload.length) throw new Error('bytes after are_done');
  return req;
}

function packet(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.write('AB', 0, 'latin1');
  head.writeUInt16BE(payload.length, 2);
  return Buffer.concat([head, payload]);
}

function str(value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes, Buffer.from([0])]);
}

function int(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

export function sendHeaders(status: number, message: string, headers: [string, string][]): Buffer {
  const parts = [Buffer.from([4]), int(status), str(message), int(headers.length)];
  for (const [name, value] of headers) {
    const code = RESPONSE_HEADERS.indexOf(name);
    parts.push(code >= 0 ? int(0xa001 + code) : str(name), str(value));
  }
  return packet(Buffer.concat(parts));
}

/** With Tomcat's trailing NUL after the data. */
export function sendBodyChunk(data: Buffer): Buffer {
  return packet(Buffer.concat([Buffer.from([3]), int(data.length), data, Buffer.from([0])]));
}

export function endResponse(reuse: boolean): Buffer {
  return packet(Buffer.from([5, reuse ? 1 : 0]));
}

export function getBodyChunk(size: number): Buffer {
  return packet(Buffer.concat([Buffer.from([6]), int(size)]));
}

export const CPONG = packet(Buffer.from([9]));

/** What one connection to the fake container received, and a way to answer. */
export interface FakeConnection {
  socket: Socket;
  /** Resolves with the next complete proxy → container payload. */
  next(): Promise<Buffer>;
}

export interface FakeContainer {
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** A loopback server that hands each connection to `handler`. */
export async function fakeContainer(handler: (conn: FakeConnection) => Promise<void> | void): Promise<FakeContainer> {
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server: Server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    const payloads: Buffer[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt16BE(2)) {
        const length = pending.readUInt16BE(2);
        payloads.push(pending.subarray(4, 4 + length));
        pending = pending.subarray(4 + length);
      }
      wake?.();
    });
    socket.on('close', () => {
      ended = true;
      wake?.();
    });
    const next = async (): Promise<Buffer> => {
      while (payloads.length === 0) {
        if (ended) throw new Error('proxy closed the connection');
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      return payloads.shift()!;
    };
    void Promise.resolve(handler({ socket, next })).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
