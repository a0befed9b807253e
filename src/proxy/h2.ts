// HTTP/2 on the https listeners, for connections that chose h2 by ALPN. Each stream becomes an
// H2Request/H2Response pair that looks to forward.ts like an HTTP/1.1 request on the lane, so sites,
// routes, stickiness, drain, pause, retries, logs and metrics are one code path; members stay HTTP/1.1
// or AJP. Defences (docs/https.md#http2): limits on concurrent streams and on the header list, streams a
// client resets before their answer counted per connection (rapid reset), and nghttp2's own limits on
// CONTINUATION frames and on invalid frames. Flow control is nghttp2's: a member's body waits for the
// client's window, and a paused request body (the member not reading) stops the window updates. An
// extended CONNECT (WebSocket, RFC 8441) goes to h2-tunnel.ts instead of the forwarder.
import { EventEmitter } from 'node:events';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { eachHeader, indexHeaders } from './headers.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM, HTTP2_HEADER_STATUS } = http2.constants;

/** What the HTTP/2 side is allowed: the `http2` config section, and the limits HTTP/1.1 has too. */
export interface H2Limits {
  maxConcurrentStreams: number;
  windowSize: number;
  /** Streams a client may reset before their answer, per connection in any RESET_WINDOW_MS (rapid reset). */
  maxResets: number;
  /** limits.header_size and limits.header_count. */
  headerBytes: number;
  headerCount: number;
  /** timeouts.client_keepalive: how long a connection with no stream open is kept. */
  keepAliveMs: number;
  /** timeouts.idle: how long a connection may send and receive nothing. */
  idleMs: number;
  /** http2.websocket: offer extended CONNECT (RFC 8441) for WebSocket. */
  websocket: boolean;
}

export type H2Handler = (req: H2Request, res: H2Response, expectContinue: boolean) => void;
/** An extended CONNECT (RFC 8441): the stream becomes a tunnel, or gets an ordinary answer (h2-tunnel.ts). */
export type H2TunnelHandler = (req: H2Request, res: H2Response, stream: ServerHttp2Stream) => void;

const ignore = () => {};
/** Why an answer was cut: any error but an AbortError makes Node reset the stream with INTERNAL_ERROR. */
const CUT_SHORT = new Error('answer cut short');

/** Response headers HTTP/2 forbids (RFC 9113 §8.2.2): a member's HTTP/1.1 framing stays on its side. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** A request on an HTTP/2 stream: the parts of IncomingMessage the forwarder reads, as the lane gives them. */
export class H2Request {
  readonly httpVersion = '2.0';
  readonly method: string;
  readonly url: string;
  /** Regular headers, with Host taken from :authority (RFC 9113 §8.3.1); pseudo-headers left out. */
  readonly rawHeaders: string[];
  readonly headers: IncomingHttpHeaders;
  /** A body follows the headers (HEADERS without END_STREAM); its length may be unknown. */
  readonly hasBody: boolean;
  /** Host and :authority name different hosts: a malformed request. */
  readonly conflictingHost: boolean;
  /** Bytes of the header list, counted as HTTP/1.1 would carry it (for limits.header_size). */
  readonly headerBytes: number;
  /** An extended CONNECT's `:protocol` (RFC 8441), e.g. `websocket`. */
  readonly protocol: string | undefined;

  constructor(
    readonly stream: ServerHttp2Stream,
    raw: string[],
    readonly socket: TLSSocket,
  ) {
    let method = 'GET';
    let path = '';
    let authority: string | undefined;
    let protocol: string | undefined;
    let host: string | undefined;
    const regular: string[] = [];
    let bytes = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      bytes += name.length + value.length + 4;
      if (name.charCodeAt(0) === 58 /* : */) {
        if (name === ':method') method = value;
        else if (name === ':path') path = value;
        else if (name === ':authority') authority = value;
        else if (name === ':protocol') protocol = value;
        continue;
      }
      if (name === 'host') host = value;
      regular.push(name, value);
    }
    this.method = method;
    this.url = path;
    this.protocol = protocol;
    this.conflictingHost = authority !== undefined && host !== undefined && authority !== host;
    if (host === undefined && authority !== undefined) regular.unshift('host', authority);
    this.headerBytes = bytes;
    this.rawHeaders = regular;
    this.headers = indexHeaders(regular);
    this.hasBody = !stream.endAfterHeaders;
  }
}

/**
 * A response on an HTTP/2 stream: the parts of ServerResponse the forwarder and the error pages use, and
 * enough of a Writable for a member's body to pipe into it (write() says when the client's window is
 * full; 'drain' when it opens).
 */
export class H2Response extends EventEmitter {
  statusCode = 200;
  writable = true;
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  private head: OutgoingHttpHeaders | undefined;
  /** No body goes out: a HEAD request, or a status that has none. */
  private bodyless: boolean;
  /** A 'drain' of the stream is awaited (listened for only then: most answers never fill the window). */
  private awaitingDrain = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly req: H2Request,
  ) {
    super();
    this.bodyless = req.method === 'HEAD';
  }

  /** The stream closed (Http2Front listens, once for both). */
  closed(): void {
    this.writable = false;
    if (!this.writableFinished) this.destroyed = true;
    this.emit('close');
  }

  /** Status, optional reason (HTTP/2 has none), and headers as an object or as alternating names and values. */
  writeHead(
    status: number,
    reason?: string | OutgoingHttpHeaders | string[],
    headers?: OutgoingHttpHeaders | string[],
  ): this {
    if (typeof reason !== 'string') headers = reason;
    const head: OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: status };
    eachHeader(headers, (name, value) => {
      const lower = name.toLowerCase();
      if (CONNECTION_SPECIFIC.has(lower)) return;
      const seen = head[lower];
      if (seen === undefined) head[lower] = value;
      else if (Array.isArray(seen)) seen.push(value);
      else head[lower] = [String(seen), value];
    });
    if (status === 204 || status === 304) this.bodyless = true;
    this.statusCode = status;
    this.head = head;
    return this;
  }

  getHeader(name: string): string | undefined {
    const value = this.head?.[name.toLowerCase()];
    return value === undefined ? undefined : String(value);
  }

  writeContinue(): void {
    if (!this.stream.destroyed) this.stream.additionalHeaders({ [HTTP2_HEADER_STATUS]: 100 });
  }

  write(chunk: Uint8Array | string, encodingOrDone?: BufferEncoding | (() => void), done?: () => void): boolean {
    const callback = typeof encodingOrDone === 'function' ? encodingOrDone : done;
    if (this.writableFinished || this.destroyed || this.stream.destroyed) return false;
    if (!this.headersSent) this.sendHead(false);
    if (this.bodyless || chunk.length === 0) {
      if (callback) process.nextTick(callback);
      return true;
    }
    const more = this.stream.write(chunk, callback);
    if (!more && !this.awaitingDrain) {
      this.awaitingDrain = true;
      this.stream.once('drain', () => {
        this.awaitingDrain = false;
        this.emit('drain');
      });
    }
    return more;
  }

  end(
    data?: Uint8Array | string | (() => void),
    encodingOrDone?: BufferEncoding | (() => void),
    done?: () => void,
  ): this {
    if (typeof data === 'function') return this.end(undefined, undefined, data);
    const callback = typeof encodingOrDone === 'function' ? encodingOrDone : done;
    if (callback) this.once('finish', callback);
    if (this.writableFinished || this.destroyed || this.stream.destroyed) return this;
    const empty = data === undefined || data.length === 0 || this.bodyless;
    if (!this.headersSent) this.sendHead(empty);
    if (!empty) this.stream.end(data);
    else if (!this.stream.writableEnded) this.stream.end();
    this.writableFinished = true;
    this.writable = false;
    this.emit('finish');
    return this;
  }

  /** Sends the head now, the body to follow (a WebSocket's 200, h2-tunnel.ts). */
  flushHeaders(): void {
    if (!this.headersSent) this.sendHead(false);
  }

  /**
   * Cuts the stream (RST_STREAM INTERNAL_ERROR): a body that failed halfway must not look complete.
   * Not stream.close(code): it ends the writable side first, and the END_STREAM it sends ahead of the
   * RST_STREAM makes the client take the body as whole. A destroyed stream cannot end.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (!this.stream.destroyed) this.stream.destroy(CUT_SHORT);
  }

  private sendHead(endStream: boolean): void {
    if (this.head === undefined) this.writeHead(this.statusCode);
    this.headersSent = true;
    this.stream.respond(this.head, { endStream });
  }
}

/** The span over which a connection's resets are counted against http2.max_resets. */
const RESET_WINDOW_MS = 10_000;

/** One client connection speaking h2: its open streams, its recent resets, and when it went quiet. */
interface SessionState {
  streams: number;
  /** Of those, WebSocket tunnels: they have timeouts.tunnel, and keep the connection past timeouts.idle. */
  tunnels: number;
  resets: number;
  /** When the count of resets started (Date.now() ms). */
  resetsSince: number;
  /** When the last stream closed (Date.now() ms); the keep-alive wait runs from here. */
  quietSince: number;
}

/**
 * The HTTP/2 side of the https listeners: takes TLS connections that negotiated h2 and turns their
 * streams into requests for `handler`. Its server is never listening; connections come from take().
 */
export class Http2Front {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Map<ServerHttp2Session, SessionState>();
  private readonly sweeper: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly handler: H2Handler,
    private readonly tunnel: H2TunnelHandler,
    private readonly limits: () => H2Limits,
    private readonly logger: Logger,
    sweepMs: number,
  ) {
    const l = limits();
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: l.maxConcurrentStreams,
        initialWindowSize: l.windowSize,
        maxHeaderListSize: l.headerBytes,
        enablePush: false,
        enableConnectProtocol: l.websocket,
      },
      // Pseudo-headers count as pairs in Node: four of them on top of the regular ones.
      maxHeaderListPairs: l.headerCount + 4,
      // A client that keeps opening streams past the limit, or sends frames nghttp2 rejects, is closed.
      maxSessionRejectedStreams: 100,
      maxSessionInvalidFrames: 100,
    });
    this.server.on('session', (session: ServerHttp2Session) => this.opened(session));
    this.server.on('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]) =>
      this.stream(stream, raw),
    );
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepMs).unref();
  }

  /** Takes a TLS connection whose ALPN chose h2; false for any other. */
  take(socket: TLSSocket): boolean {
    if (socket.alpnProtocol !== 'h2') return false;
    if (this.closing) {
      // Accepted as the listener closed: a GOAWAY at once, so the client retries on the new listener.
      this.server.once('session', (session: ServerHttp2Session) => session.close());
    }
    this.server.emit('connection', socket);
    return true;
  }

  /** Connections still open. */
  get size(): number {
    return this.sessions.size;
  }

  /** Graceful close: GOAWAY on every connection; streams in progress finish, then each connection closes. */
  closeIdle(): void {
    this.closing = true;
    for (const session of this.sessions.keys()) if (!session.closed) session.close();
  }

  closeAll(): void {
    clearInterval(this.sweeper);
    for (const session of this.sessions.keys()) session.destroy();
  }

  private opened(session: ServerHttp2Session): void {
    const now = Date.now();
    const state: SessionState = { streams: 0, tunnels: 0, resets: 0, resetsSince: now, quietSince: now };
    this.sessions.set(session, state);
    session.setTimeout(this.limits().idleMs, () => {
      if (state.tunnels === 0) session.destroy();
    });
    session.on('error', (error) => this.logger.debug({ err: error.message }, 'HTTP/2 connection failed'));
    session.once('close', () => this.sessions.delete(session));
  }

  private stream(stream: ServerHttp2Stream, raw: string[]): void {
    const session = stream.session as ServerHttp2Session;
    const state = this.sessions.get(session);
    if (!state) return void stream.close(NGHTTP2_REFUSED_STREAM);
    state.streams++;
    const req = new H2Request(stream, raw, session.socket as TLSSocket);
    const res = new H2Response(stream, req);
    // A stream the client resets emits an error; its 'close' is what counts.
    stream.on('error', ignore);
    // A tunnel the client closes with a reset is not what rapid reset is about, once it was answered.
    const tunnel = req.method === 'CONNECT' && req.protocol !== undefined;
    if (tunnel) state.tunnels++;
    stream.on('close', () => {
      res.closed();
      state.streams--;
      if (tunnel) state.tunnels--;
      if (state.streams === 0) state.quietSince = Date.now();
      if (stream.rstCode === NGHTTP2_CANCEL && !res.writableFinished && !(tunnel && stream.headersSent))
        this.reset(session, state);
    });
    // A plain CONNECT asks for a forward proxy, which Dayshift is not.
    if (req.method === 'CONNECT' && !tunnel) return this.answer(res, 405);
    if (req.conflictingHost) return this.answer(res, 400);
    // nghttp2 enforces SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged it.
    if (req.headerBytes > this.limits().headerBytes) return this.answer(res, 431);
    if (tunnel) return this.tunnel(req, res, stream);
    const expectContinue = req.hasBody && req.headers.expect?.toLowerCase() === '100-continue';
    this.handler(req, res, expectContinue);
  }

  /** The client reset a stream before its answer was complete: what the rapid-reset attack does en masse. */
  private reset(session: ServerHttp2Session, state: SessionState): void {
    const now = Date.now();
    if (now - state.resetsSince > RESET_WINDOW_MS) {
      state.resets = 0;
      state.resetsSince = now;
    }
    if (++state.resets <= this.limits().maxResets || session.destroyed) return;
    this.logger.warn(
      { client: session.socket?.remoteAddress, resets: state.resets },
      'HTTP/2 client reset too many streams: connection closed',
    );
    // The final GOAWAY carries the code (Node emits it as the session's error, logged at debug).
    session.destroy(new Error('too many streams reset'), NGHTTP2_ENHANCE_YOUR_CALM);
  }

  /** A refusal before routing, on the stream only: the connection carries on. */
  private answer(res: H2Response, status: number): void {
    res.writeHead(status, { 'content-length': 0 });
    res.end();
  }

  /** Closes connections with no stream open past their keep-alive wait. */
  private sweep(now: number): void {
    const keepAliveMs = this.limits().keepAliveMs;
    for (const [session, state] of this.sessions) {
      if (state.streams === 0 && now - state.quietSince >= keepAliveMs && !session.closed) session.close();
    }
  }
}
