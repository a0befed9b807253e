// A layer-4 TCP front: accepts connections and splices each one to the current target. It knows
// nothing about the protocol inside, so it serves a database writer endpoint as well as any other TCP
// service (the LVS point in the origin comments). Switching is two calls: setTarget() sends new
// connections to the new target; closeConnectionsTo(old) ends the connections still on the old one.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { delay } from '../delay.js';
import { listenOn, listeningFd, type HandedSocket } from '../socket-activation.js';
import { clientEnds, proxyHeader } from '../proxy/proxy-protocol.js';

export interface TcpTarget {
  host: string;
  port: number;
}

export interface TcpFrontOptions {
  listen: { host: string; port: number };
  target: TcpTarget;
  /** How long connecting to the target may take before the client is disconnected. */
  connectTimeout?: number;
  /**
   * Open each target connection with a PROXY protocol header (HAProxy `send-proxy`/`send-proxy-v2`), so
   * the target sees the client's address (MariaDB: proxy_protocol_networks).
   */
  proxyProtocol?: 'v1' | 'v2';
}

export interface TcpFrontStats {
  target: TcpTarget;
  /** Client connections currently spliced to a target. */
  open: number;
  total: number;
  /** Target connections that failed (refused, timed out). */
  failed: number;
  /** Bytes from clients to targets, and back. */
  bytesIn: number;
  bytesOut: number;
}

interface Splice {
  client: Socket;
  upstream: Socket;
  target: TcpTarget;
}

/** How long a side whose peer has closed may go without traffic while its last bytes go through. */
const LINGER_MS = 30_000;

const sameTarget = (a: TcpTarget, b: TcpTarget) => a.host === b.host && a.port === b.port;

export class TcpFront {
  private readonly server: Server;
  private target: TcpTarget;
  private readonly splices = new Set<Splice>();
  private readonly counters = { total: 0, failed: 0, bytesIn: 0, bytesOut: 0 };

  constructor(private readonly options: TcpFrontOptions) {
    this.target = { ...options.target };
    // Half-open both ways: a client that sends and shuts its side (FIN) still gets the whole answer; each
    // end is passed on by pipe() once the bytes before it are through, and the splice ends when both have.
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => this.accept(client));
  }

  async start(): Promise<AddressInfo> {
    await listenOn(this.server, this.options.listen, 'writer');
    return this.address();
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  currentTarget(): TcpTarget {
    return { ...this.target };
  }

  /** New connections go to `target` from now on; open ones stay where they are. */
  setTarget(target: TcpTarget): void {
    this.target = { ...target };
  }

  /** Ends every connection spliced to `target`; returns how many. */
  closeConnectionsTo(target: TcpTarget): number {
    let closed = 0;
    for (const splice of this.splices) {
      if (!sameTarget(splice.target, target)) continue;
      splice.client.destroy();
      splice.upstream.destroy();
      this.splices.delete(splice);
      closed++;
    }
    return closed;
  }

  stats(): TcpFrontStats {
    return { target: this.currentTarget(), open: this.splices.size, ...this.counters };
  }

  /** The listening socket, to hand to the next generation at an upgrade. */
  listeningSocket(): HandedSocket {
    return { name: 'writer', fd: listeningFd(this.server) };
  }

  /**
   * Stops accepting (the next generation accepts on the socket) and waits up to graceMs for the open
   * connections to end by themselves; close() ends the rest.
   */
  async drain(graceMs: number): Promise<void> {
    this.server.close();
    const deadline = Date.now() + graceMs;
    while (this.splices.size > 0 && Date.now() < deadline) await delay(100);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const splice of this.splices) {
      splice.client.destroy();
      splice.upstream.destroy();
    }
    this.splices.clear();
    await closed;
  }

  private accept(client: Socket): void {
    this.counters.total++;
    const target = this.currentTarget();
    const upstream = connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    const splice: Splice = { client, upstream, target };
    this.splices.add(splice);
    let connected = false;
    const end = () => {
      this.splices.delete(splice);
      client.destroy();
      upstream.destroy();
    };
    // One side closed cleanly (both its directions done): pipe() has ended the other, which closes once
    // its last bytes are through; one whose peer never finishes is cut after LINGER_MS without traffic.
    const closed = (other: Socket) => (hadError: boolean) => {
      if (hadError || other.destroyed) end();
      else other.setTimeout(LINGER_MS, end);
    };
    upstream.setTimeout(this.options.connectTimeout ?? 5000, () => {
      if (!connected) end();
    });
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
    });
    upstream.on('error', () => {
      if (!connected) this.counters.failed++;
      end();
    });
    client.on('error', end);
    client.on('close', closed(upstream));
    upstream.on('close', closed(client));
    client.on('data', (chunk: Buffer) => {
      this.counters.bytesIn += chunk.length;
    });
    upstream.on('data', (chunk: Buffer) => {
      this.counters.bytesOut += chunk.length;
    });
    // Bytes a client sends before the target answers are buffered by the upstream socket until connect.
    const version = this.options.proxyProtocol;
    if (version)
      upstream.write(
        proxyHeader(
          version,
          ...clientEnds(client.remoteAddress, client.remotePort, client.localAddress, client.localPort),
        ),
      );
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
