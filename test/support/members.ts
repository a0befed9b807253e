// Loopback members for proxy tests: small node:http servers that answer with who they are and record
// what they received, including the raw bytes off the socket (to prove nothing was smuggled through).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
}

export interface TestMember {
  name: string;
  url: string;
  port: number;
  server: http.Server;
  received: Received[];
  /** Every byte received on every connection, in order (the first RAW_LIMIT bytes). */
  raw(): string;
  /** The same bytes per connection, in the order the connections opened. */
  rawByConnection(): string[];
  connections: number;
  close(): Promise<void>;
}

/** Raw bytes kept per member: enough for protocol tests, bounded for the 1 GB streaming tests. */
const RAW_LIMIT = 4 * 1024 * 1024;

export type MemberHandler = (req: http.IncomingMessage, res: http.ServerResponse, member: TestMember) => void;

/** Default handler: drains the body, answers 200 with the member's name and the body length. */
export const echoName: MemberHandler = (req, res, member) => {
  let bytes = 0;
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    const body = `${member.name} ${bytes}`;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': Buffer.byteLength(body),
      'x-member': member.name,
    });
    res.end(body);
  });
};

/** Drains the body and answers 404: what a member says of a path it does not serve. */
export const notFound: MemberHandler = (req, res) => {
  req.resume();
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
};

/**
 * A member handler that chooses by path (the query does not count): `routes({ '/slow': slow }, echo)`.
 * Paths not in the map go to `otherwise`, by default a 404.
 */
export function routes(byPath: Record<string, MemberHandler>, otherwise: MemberHandler = notFound): MemberHandler {
  const handlers = new Map(Object.entries(byPath));
  return (req, res, member) => {
    const path = new URL(req.url ?? '/', 'http://member').pathname;
    (handlers.get(path) ?? otherwise)(req, res, member);
  };
}

export async function startMember(name: string, handler: MemberHandler = echoName, port = 0): Promise<TestMember> {
  const rawChunks: Buffer[] = [];
  const connectionChunks: Buffer[][] = [];
  let rawBytes = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer();
  const member: TestMember = {
    name,
    url: '',
    port: 0,
    server,
    received: [],
    raw: () => Buffer.concat(rawChunks).toString('latin1'),
    rawByConnection: () => connectionChunks.map((chunks) => Buffer.concat(chunks).toString('latin1')),
    connections: 0,
    close: async () => {
      const closed = once(server, 'close');
      server.close();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  server.on('connection', (socket: Socket) => {
    member.connections++;
    sockets.add(socket);
    const chunks: Buffer[] = [];
    connectionChunks.push(chunks);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      if (rawBytes >= RAW_LIMIT) return;
      const copy = Buffer.from(chunk);
      rawChunks.push(copy);
      chunks.push(copy);
      rawBytes += chunk.length;
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const entry: Received = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
    };
    member.received.push(entry);
    req.on('data', (chunk: Buffer) => (entry.bodyBytes += chunk.length));
    handler(req, res, member);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  member.port = (server.address() as AddressInfo).port;
  member.url = `http://127.0.0.1:${member.port}`;
  return member;
}
