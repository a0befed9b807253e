// The fast lane of an HTTP/1.1 listener, plain or TLS (after the handshake): requests without a body
// are parsed with llhttp and answered here, without Node's IncomingMessage/ServerResponse streams, which
// cost more than everything else the proxy does per request (docs/benchmarks.md). Anything else — a body,
// Expect, an upgrade, HTTP/1.0, an absolute-form target, a parse error, headers over the limits — hands
// the connection, with the bytes of that request, to Node's http server on the same listener, which
// keeps it from then on. So the lane only ever handles requests Node's strict parser would also accept,
// and every refusal of a malformed or oversized request (400, 431) is still Node's; a head too slow to
// arrive gets 408 here, as from Node, and an HTTP/0.9 request line (which Node's parser would wait on)
// 400. A connection the lane closes is released once its last bytes have left (closing.ts).
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { closeAfterFlush } from './closing.js';
import { eachHeader, indexHeaders } from './headers.js';
import { RequestParser, type RequestEvents, type RequestHead } from './http1/llhttp.js';
import { VERSIONLESS_ANSWER, versionless } from './request-line.js';

export interface LaneLimits {
  /** Bytes of request target and headers (limits.header_size). */
  headerBytes: number;
  headerCount: number;
  /** How long a connection may wait for its next request (timeouts.client_keepalive). */
  keepAliveMs: number;
  /** How long a request's head may take to arrive. */
  headersMs: number;
  /** How long queued answer bytes may sit without moving (timeouts.idle). */
  idleMs: number;
}

export interface LaneHandler {
  request(req: LaneRequest, res: LaneResponse): void;
  limits(): LaneLimits;
}

/** Pipelined bytes held while a response is in flight; past this, reading from the client pauses. */
const PIPELINE_BYTES = 64 * 1024;
/** Answers up to this size go out as one string with their head. */
const ONE_WRITE_BYTES = 16 * 1024;
/** How often deadlines (head and keep-alive) are checked. */
export const SWEEP_MS = 500;

/** A request taken by the lane: the parts of IncomingMessage the forwarder reads. */
export class LaneRequest {
  readonly httpVersion = '1.1';
  readonly headers: IncomingHttpHeaders;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly rawHeaders: string[],
    readonly socket: Socket,
  ) {
    this.headers = indexHeaders(rawHeaders);
  }
}

let dateSecond = 0;
let dateText = '';

function httpDate(): string {
  const now = Date.now();
  if (now - dateSecond >= 1000) {
    dateSecond = now - (now % 1000);
    dateText = new Date(dateSecond).toUTCString();
  }
  return dateText;
}

/**
 * A response on the lane: the parts of ServerResponse the forwarder and error pages use (writeHead,
 * write, end, destroy, 'close'), and enough of a Writable for a body stream to pipe into it.
 */
export class LaneResponse extends EventEmitter {
  statusCode = 200;
  /** For Readable.pipe(): whether writes are still taken. */
  writable = true;
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  private head: string | undefined;
  private closeEmitted = false;
  private contentLength: string | undefined;
  private chunked = false;
  /** No body goes out: a HEAD request, or a status that has none (1xx, 204, 304). */
  private bodyless: boolean;

  constructor(
    private readonly connection: LaneConnection,
    readonly req: LaneRequest,
    /** The connection carries on after this response. */
    private keepAlive: boolean,
  ) {
    super();
    this.bodyless = req.method === 'HEAD';
  }

  /** Status, optional reason, and headers as an object or as alternating names and values. */
  writeHead(
    status: number,
    reason?: string | OutgoingHttpHeaders | string[],
    headers?: OutgoingHttpHeaders | string[],
  ): this {
    if (typeof reason !== 'string') {
      headers = reason;
      reason = undefined;
    }
    let head = `HTTP/1.1 ${status} ${reason ?? STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let date = false;
    let length: string | undefined;
    eachHeader(headers, (name, value) => {
      const lower = name.length === 4 || name.length === 10 || name.length === 14 ? name.toLowerCase() : '';
      if (lower === 'date') date = true;
      else if (lower === 'content-length') length = value;
      else if (lower === 'connection') {
        // Only the proxy's own pages set it ("close" after a 400 or 431): the lane adds it otherwise.
        if (value.toLowerCase() === 'close') this.keepAlive = false;
        return;
      }
      head += `${name}: ${value}\r\n`;
    });
    if (!date) head += `date: ${httpDate()}\r\n`;
    this.statusCode = status;
    this.contentLength = length;
    this.head = head;
    return this;
  }

  getHeader(name: string): string | undefined {
    return name.toLowerCase() === 'content-length' ? this.contentLength : undefined;
  }

  writeContinue(): void {
    this.connection.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  write(chunk: Uint8Array | string, encodingOrDone?: BufferEncoding | (() => void), done?: () => void): boolean {
    if (this.writableFinished || this.destroyed) return false;
    const callback = typeof encodingOrDone === 'function' ? encodingOrDone : done;
    if (callback) process.nextTick(callback);
    const socket = this.connection.socket;
    if (!this.headersSent) socket.write(this.headFor(undefined), 'latin1');
    if (this.bodyless || chunk.length === 0) return true;
    if (!this.chunked) return socket.write(chunk);
    socket.cork();
    socket.write(`${Buffer.byteLength(chunk).toString(16)}\r\n`);
    socket.write(chunk);
    const ok = socket.write('\r\n');
    socket.uncork();
    return ok;
  }

  end(
    data?: Uint8Array | string | (() => void),
    encodingOrDone?: BufferEncoding | (() => void),
    done?: () => void,
  ): this {
    if (typeof data === 'function') return this.end(undefined, undefined, data);
    const callback = typeof encodingOrDone === 'function' ? encodingOrDone : done;
    if (callback) this.once('finish', callback);
    if (this.writableFinished || this.destroyed) return this;
    const socket = this.connection.socket;
    if (!this.headersSent && Buffer.isBuffer(data) && data.length <= ONE_WRITE_BYTES) {
      // A whole small answer: head and body as one latin1 string, one write (a writev of two
      // buffers costs measurably more per request).
      const head = this.headFor(data);
      socket.write(this.bodyless ? head : head + data.toString('latin1'), 'latin1');
    } else {
      socket.cork();
      if (!this.headersSent) socket.write(this.headFor(data), 'latin1');
      if (data !== undefined && data.length > 0) this.write(data);
      if (this.chunked) socket.write('0\r\n\r\n');
      socket.uncork();
    }
    this.writableFinished = true;
    this.writable = false;
    this.emit('finish');
    this.connection.finished(this, this.keepAlive);
    this.emitClose();
    return this;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.connection.socket.destroy();
  }

  /** The client's connection closed (before the response finished, or after). */
  closed(): void {
    this.destroyed = true;
    this.writable = false;
    this.emitClose();
  }

  private emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close');
  }

  /** Makes this the connection's last response. */
  lastOnConnection(): void {
    this.keepAlive = false;
  }

  /** The head to send, framed for `data` when it is the whole body (else chunked, without a length). */
  private headFor(data: Uint8Array | string | undefined): string {
    if (this.head === undefined) this.writeHead(this.statusCode);
    let head = this.head!;
    const status = this.statusCode;
    if (status === 204 || status === 304 || status < 200) this.bodyless = true;
    if (this.contentLength === undefined && !this.bodyless) {
      if (data !== undefined) head += `content-length: ${Buffer.byteLength(data)}\r\n`;
      else {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      }
    }
    head += this.keepAlive ? this.connection.keepAliveHeader : 'connection: close\r\n';
    this.headersSent = true;
    return `${head}\r\n`;
  }
}

type Phase = 'idle' | 'head' | 'busy';

/** One client connection while the lane has it. */
class LaneConnection implements RequestEvents {
  private readonly parser: RequestParser;
  private phase: Phase = 'idle';
  /** When the current phase times out (Date.now() ms); 0 for none. */
  deadline = 0;
  /** Bytes of the request being parsed, from its first byte (handed to Node's server on hand-off). */
  private requestBytes: Buffer[] = [];
  private requestLength = 0;
  /** Bytes after a complete request, waiting for its response to finish (pipelining). */
  private pending: Buffer | undefined;
  private request: LaneRequest | undefined;
  private keepAlive = false;
  private handingOff = false;
  /** The client sent FIN: what it sent is answered, then the connection closes. */
  private clientEnded = false;
  /** No request has begun on it yet: a client that just connected, whose request is on its way. */
  private fresh = true;
  /** The request line of the request being parsed is known to carry a version. */
  private versioned = false;
  /**
   * Answer bytes still queued for the client when the connection went idle, as last seen (0: none).
   * The keep-alive wait starts only once they have left.
   */
  private queued = 0;
  private response: LaneResponse | undefined;
  keepAliveHeader: string;
  private readonly onData = (data: Buffer) => this.received(data);
  private readonly onDrain = () => this.response?.emit('drain');
  private readonly onClose = () => this.closed();
  private readonly onError = () => this.socket.destroy();
  /** The last answer has left (a write callback after it): the keep-alive wait starts now. */
  private readonly onFlushed = () => {
    if (this.queued === 0 || this.socket.writableLength > 0) return;
    this.queued = 0;
    if (this.phase === 'idle') this.deadline = Date.now() + this.lane.handler.limits().keepAliveMs;
  };
  /** The client sent FIN (the listener allows half-open sockets): close once nothing is left to answer. */
  private readonly onEnd = () => {
    this.clientEnded = true;
    if (this.response !== undefined || this.pending !== undefined) return;
    if (this.phase === 'head') this.socket.destroy();
    else this.socket.end();
  };

  constructor(
    readonly socket: Socket,
    private readonly lane: Lane,
  ) {
    this.parser = new RequestParser(this);
    this.keepAliveHeader = `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(lane.handler.limits().keepAliveMs / 1000)}\r\n`;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    this.waitForRequest();
  }

  /** No request in flight (the server is closing, or the connection is idle). */
  get idle(): boolean {
    return this.phase === 'idle';
  }

  /**
   * Past its deadline: an idle connection closes, a head still incomplete gets 408 (as Node answers).
   * An answer still leaving for a slow client keeps the connection while its bytes move.
   */
  expire(now: number): void {
    if (this.deadline === 0 || now < this.deadline) return;
    if (this.queued > 0 && this.phase === 'idle') {
      const queued = this.socket.writableLength;
      if (queued > 0 && queued < this.queued) {
        this.queued = queued;
        this.deadline = now + this.lane.handler.limits().idleMs;
        return;
      }
    }
    if (this.phase === 'head') {
      this.refuse('HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.socket.destroy();
    this.phase = 'busy';
    this.deadline = 0;
  }

  /** Answers the request being parsed itself, and closes. */
  private refuse(answer: string): void {
    this.phase = 'busy';
    this.deadline = 0;
    closeAfterFlush(this.socket, answer, this.lane.handler.limits().idleMs);
  }

  close(): void {
    this.socket.destroy();
  }

  /** After the current response (if any), close. */
  closeAfterResponse(): void {
    this.response?.lastOnConnection();
    // A connection accepted just before the close has a request on its way: it is answered (and then
    // closed, the lane being closing), or closed at its keep-alive deadline if nothing comes.
    if (this.phase !== 'idle' || this.fresh) return;
    this.phase = 'busy';
    this.deadline = 0;
    // An answer may still be leaving for a slow client: it goes out before the close.
    closeAfterFlush(this.socket, undefined, this.lane.handler.limits().idleMs);
  }

  finished(response: LaneResponse, keepAlive: boolean): void {
    if (this.response !== response) return;
    this.response = undefined;
    if (!keepAlive || this.lane.closing || (this.clientEnded && this.pending === undefined)) {
      this.phase = 'busy';
      this.deadline = 0;
      closeAfterFlush(this.socket, undefined, this.lane.handler.limits().idleMs);
      return;
    }
    this.waitForRequest();
    this.parser.resume();
    if (this.pending) {
      this.socket.resume();
      // On the next tick: a client pipelining many requests must not grow the stack.
      process.nextTick(() => {
        const pending = this.pending;
        this.pending = undefined;
        if (pending && !this.socket.destroyed && this.response === undefined) this.parse(pending);
      });
    }
  }

  // RequestEvents, from the parser.

  head(head: RequestHead): boolean {
    const limits = this.lane.handler.limits();
    const raw = head.headers;
    let hosts = 0;
    let take =
      head.httpMajor === 1 &&
      head.httpMinor === 1 &&
      !head.upgrade &&
      head.url[0] === '/' &&
      head.headerBytes <= limits.headerBytes &&
      raw.length <= limits.headerCount * 2;
    for (let i = 0; take && i < raw.length; i += 2) {
      const name = raw[i]!;
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'host') hosts++;
          break;
        case 6:
          if (name.toLowerCase() === 'expect') take = false;
          break;
        case 14:
          if (name.toLowerCase() === 'content-length' && raw[i + 1] !== '0') take = false;
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') take = false;
          break;
      }
    }
    if (!take || hosts !== 1 || head.method === 'CONNECT') {
      this.handingOff = true;
      return false;
    }
    this.request = new LaneRequest(head.method, head.url, raw, this.socket);
    this.keepAlive = head.keepAlive;
    return true;
  }

  private waitForRequest(): void {
    const limits = this.lane.handler.limits();
    this.phase = 'idle';
    this.requestBytes = [];
    this.requestLength = 0;
    this.versioned = false;
    const queued = this.socket.writableLength;
    if (queued === 0) {
      this.deadline = Date.now() + limits.keepAliveMs;
      return;
    }
    // A slow client is still taking the last answer: the keep-alive wait starts once it has left
    // (onFlushed); until then the connection goes only if the bytes stop moving for the idle timeout.
    this.queued = queued;
    this.deadline = Date.now() + limits.idleMs;
    this.socket.write('', this.onFlushed);
  }

  private received(data: Buffer): void {
    if (this.response || this.phase === 'busy' || this.pending) {
      // Pipelined: parsed after the current response (and after the bytes already waiting).
      this.pending = this.pending ? Buffer.concat([this.pending, data]) : data;
      if (this.pending.length > PIPELINE_BYTES) this.socket.pause();
      return;
    }
    this.parse(data);
  }

  private parse(data: Buffer): void {
    if (this.phase === 'idle') {
      this.phase = 'head';
      this.fresh = false;
      this.queued = 0;
      this.deadline = Date.now() + this.lane.handler.limits().headersMs;
    }
    this.requestBytes.push(data);
    this.requestLength += data.length;
    const result = this.parser.execute(data);
    if (this.handingOff || typeof result === 'string') {
      this.handOff();
      return;
    }
    if (result === undefined) {
      // Head not complete yet: a head past the limit goes to Node, which answers 431.
      if (this.requestLength > this.lane.handler.limits().headerBytes + 1024) this.handOff();
      else if (!this.versioned) {
        const bytes = this.requestBytes.length === 1 ? data : Buffer.concat(this.requestBytes);
        const missing = versionless(bytes);
        if (missing) this.refuse(VERSIONLESS_ANSWER);
        else if (missing === false) this.versioned = true;
      }
      return;
    }
    // The parser paused at the end of a request: dispatched now that llhttp has returned.
    if (result < data.length) this.pending = data.subarray(result);
    this.dispatch();
  }

  private dispatch(): void {
    const request = this.request!;
    this.request = undefined;
    this.phase = 'busy';
    this.deadline = 0;
    const response = new LaneResponse(this, request, this.keepAlive && !this.lane.closing);
    this.response = response;
    this.lane.handler.request(request, response);
  }

  /** Gives the connection, and the bytes of the request in progress, to Node's http server. */
  private handOff(): void {
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('drain', this.onDrain);
    socket.off('close', this.onClose);
    socket.off('error', this.onError);
    socket.off('end', this.onEnd);
    this.parser.free();
    this.lane.release(this);
    const bytes = this.requestBytes.length === 1 ? this.requestBytes[0]! : Buffer.concat(this.requestBytes);
    this.lane.nodeConnection(socket);
    socket.emit('data', bytes);
    if (this.pending) socket.emit('data', this.pending);
    socket.resume();
  }

  private closed(): void {
    this.parser.free();
    this.lane.release(this);
    this.response?.closed();
  }
}

/**
 * The lane on one http or https server: takes its connections (after the handshake, on https) in place
 * of Node's connection listener, and gives that listener the ones it hands off. `divert` takes the
 * connections that speak another protocol (h2, chosen by ALPN) before the lane sees them.
 */
export class Lane {
  closing = false;
  private readonly connections = new Set<LaneConnection>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly nodeListener: (socket: Socket) => void;

  constructor(
    private readonly server: Server | HttpsServer,
    readonly handler: LaneHandler,
    divert?: (socket: TLSSocket) => boolean,
  ) {
    const event = server instanceof HttpsServer ? 'secureConnection' : 'connection';
    const [listener] = server.listeners(event) as ((socket: Socket) => void)[];
    if (!listener) throw new Error(`server without a ${event} listener`);
    this.nodeListener = listener;
    server.off(event, listener);
    server.on(event, (socket: Socket) => {
      if (divert?.(socket as TLSSocket)) return;
      this.connections.add(new LaneConnection(socket, this));
    });
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const connection of this.connections) connection.expire(now);
    }, SWEEP_MS).unref();
  }

  /** Node's http server takes this connection from now on. */
  nodeConnection(socket: Socket): void {
    this.nodeListener.call(this.server, socket);
  }

  release(connection: LaneConnection): void {
    this.connections.delete(connection);
  }

  /** Connections the lane still holds. */
  get size(): number {
    return this.connections.size;
  }

  /**
   * Closes connections waiting for their next request; the others close after their response, and
   * those that have not sent a first request yet after it (or at their keep-alive deadline).
   */
  closeIdle(): void {
    this.closing = true;
    for (const connection of this.connections) connection.closeAfterResponse();
  }

  closeAll(): void {
    clearInterval(this.sweeper);
    for (const connection of this.connections) connection.close();
  }
}
