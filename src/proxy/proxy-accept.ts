// A listener that takes the PROXY protocol (HAProxy `accept-proxy`): each connection must come from
// trusted_proxies and open with a PROXY header; anything else is closed. The header's source address
// then stands in for the socket's own (remoteAddress and the rest, set once on the socket), so
// allow/deny, X-Forwarded-For, Forwarded, the access log and sessions read it with no change and
// listeners without the PROXY protocol pay nothing.
import type { BlockList, Server, Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import { listHas } from './snapshot.js';
import { parseProxyHeader, type Endpoint } from './proxy-protocol.js';

export interface ProxyAcceptSettings {
  /** trusted_proxies, read per connection (a reload may change it). */
  trusted(): BlockList | undefined;
  /** How long the header may take to arrive (the request head timeout). */
  headMs(): number;
  /** A v2 header's largest size in bytes. */
  maxBytes(): number;
  /** A connection closed: from an untrusted peer, without a valid header, or too slow. */
  refused(peer: string, reason: string): void;
}

export interface ProxyAcceptor {
  /** Closes the connections still waiting for their header. */
  closeAll(): void;
}

/**
 * Puts the PROXY header first on `server`'s connections: its 'connection' listeners (Node's, the TLS
 * server's, the fast lane's) get a connection once its header is read, with the bytes after it.
 */
export function acceptProxyProtocol(server: Server, settings: ProxyAcceptSettings): ProxyAcceptor {
  const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const waiting = new Set<Socket>();
  const secure = server instanceof TlsServer;
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? '';
    const trusted = settings.trusted();
    if (!trusted || !listHas(trusted, peer)) {
      settings.refused(peer, 'not in trusted_proxies');
      socket.destroy();
      return;
    }
    waiting.add(socket);
    let seen: Buffer | undefined;
    const finish = () => {
      clearTimeout(timer);
      waiting.delete(socket);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
    };
    const refuse = (reason: string) => {
      finish();
      settings.refused(peer, reason);
      socket.destroy();
    };
    const onData = (data: Buffer) => {
      seen = seen ? Buffer.concat([seen, data]) : data;
      const header = parseProxyHeader(seen, settings.maxBytes());
      if (header.kind === 'incomplete') return;
      if (header.kind === 'malformed') return refuse(header.reason);
      finish();
      if (header.source) adoptAddresses(socket, header.source, header.destination!);
      // Paused, so that the bytes after the header wait in the socket's buffer for the next reader: a
      // TLS socket takes them from there (and then reads the TCP handle itself), the lane by 'data'.
      socket.pause();
      if (seen.length > header.length) socket.unshift(seen.subarray(header.length));
      for (const listener of listeners) listener.call(server, socket);
      if (!secure) socket.resume();
    };
    const onError = () => refuse('connection error before the PROXY header');
    const onEnd = () => refuse('closed before the PROXY header');
    const timer = setTimeout(() => refuse('no PROXY header in time'), settings.headMs());
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
  });
  return {
    closeAll() {
      for (const socket of waiting) socket.destroy();
      waiting.clear();
    },
  };
}

/** The socket's addresses are those of the original connection from now on (own properties shadow Node's getters). */
function adoptAddresses(socket: Socket, source: Endpoint, destination: Endpoint): void {
  Object.defineProperties(socket, {
    remoteAddress: { value: source.address },
    remotePort: { value: source.port },
    remoteFamily: { value: source.family },
    localAddress: { value: destination.address },
    localPort: { value: destination.port },
  });
}

/**
 * The TLS socket a TLS server wraps around a connection reads its addresses from the TCP handle: it
 * takes the ones adopted on the connection (Node's `_parent`), at 'secureConnection', before any request.
 */
export function adoptParentAddresses(tlsSocket: TLSSocket): void {
  const parent = (tlsSocket as TLSSocket & { _parent?: Socket })._parent;
  if (!parent || !Object.hasOwn(parent, 'remoteAddress')) return;
  for (const key of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(tlsSocket, key, { value: parent[key] });
  }
}
