// Closing an https listener without resetting anyone, as the lane closes a plain-HTTP one (lane.ts).
// Node's server.close() and closeIdleConnections() destroy every connection with no request in progress,
// among them one accepted a moment ago whose first request is still on its way: that client sees a
// reset. Here the listener stops accepting; a connection waiting for its next request is closed cleanly
// (closing.ts); one with a response in progress, or a first request still to come, is answered with
// `Connection: close`, and one that sends nothing is closed at its keep-alive deadline.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import { closeAfterFlush } from './closing.js';

export interface TlsClosingLimits {
  keepAliveMs: number;
  idleMs: number;
}

export class TlsClosing {
  /** Connections past their handshake, with the time their keep-alive wait ends while no request came. */
  private readonly connections = new Map<TLSSocket, number>();
  /** Each connection's latest response. */
  private readonly responses = new WeakMap<TLSSocket, ServerResponse>();
  private closing = false;

  constructor(
    private readonly server: Server,
    private readonly limits: () => TlsClosingLimits,
  ) {
    server.on('secureConnection', (socket: TLSSocket) => {
      this.connections.set(socket, Date.now() + this.limits().keepAliveMs);
      socket.once('close', () => this.connections.delete(socket));
    });
    // First, so that a response begun by a later listener already knows it is the connection's last.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      this.responses.set(req.socket as TLSSocket, res);
      if (this.closing) res.shouldKeepAlive = false;
    });
    // A tunnel leaves the http server: it is closed with the others, at the end of the grace.
    server.prependListener('upgrade', (req: IncomingMessage) => this.connections.delete(req.socket as TLSSocket));
  }

  /** Connections still open. */
  get size(): number {
    return this.connections.size;
  }

  /**
   * Stops accepting (the callback runs once every connection is gone) and closes what can be closed
   * now: connections waiting for a next request. Call sweep() until size is 0 or the grace ends.
   */
  close(onClosed: () => void): void {
    this.closing = true;
    // tls.Server's own close: http's would destroy the idle connections first (see above).
    tls.Server.prototype.close.call(this.server, () => onClosed());
    for (const socket of this.connections.keys()) {
      const res = this.responses.get(socket);
      if (res && !res.writableFinished && !res.headersSent) res.shouldKeepAlive = false;
      // A response whose head promised keep-alive: the connection closes once it has been sent.
      else if (res && !res.writableFinished) res.once('finish', () => this.closeIdle(socket));
    }
    this.sweep(Date.now());
  }

  /** Closes connections that have answered their last request, and those past their keep-alive wait. */
  sweep(now: number): void {
    for (const [socket, deadline] of this.connections) {
      const res = this.responses.get(socket);
      if (res ? res.writableFinished : now >= deadline) this.closeIdle(socket);
    }
  }

  private closeIdle(socket: TLSSocket): void {
    if (socket.writableEnded) return;
    closeAfterFlush(socket, undefined, this.limits().idleMs);
  }
}
