// One keep-alive connection to an http:// or https:// member, carrying one exchange at a time: writes
// the request head and body, parses the response with llhttp, and tells its pool whether it can carry
// the next one. Errors are classified by how far the exchange got, which decides whether the forwarder
// may retry it elsewhere.
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connectMember } from '../member-socket.js';
import type { UpstreamRequest } from '../member-transport.js';
import { UpstreamError } from '../errors.js';
import { ResponseParser, type ResponseEvents } from './llhttp.js';

/** What one exchange hears from its connection. */
export interface ExchangeEvents {
  /** Header names as the member wrote them, names and values alternating. */
  responseHeaders(status: number, statusText: string, headers: string[]): void;
  responseBody(chunk: Buffer): void;
  responseComplete(): void;
  responseError(error: UpstreamError): void;
}

export interface ConnectionSettings {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  /** Bytes of a response head at most: past it the exchange fails (502). */
  responseHeadBytes: number;
  /** Verify an https member's certificate. */
  verify: boolean;
}

/** How long an idle connection is kept when the member gives no Keep-Alive hint (as undici does). */
const DEFAULT_KEEP_ALIVE_MS = 4000;
/** Given back before the member's own keep-alive timeout, so that it does not close under a request. */
const KEEP_ALIVE_MARGIN_MS = 1000;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export class MemberConnection implements ResponseEvents {
  /** Exchanges this connection has completed (0: fresh, so a failure cannot be a stale keep-alive). */
  private served = 0;
  private exchange: ExchangeEvents | undefined;
  private method = '';
  /** Response headers arrived for the current exchange. */
  private responded = false;
  /** Stops writing the request body, while it is being written. */
  private stopBody: (() => void) | undefined;
  private keepAlive = false;
  /** Idle lifetime from the member's Keep-Alive: timeout=N, else the default. */
  keepAliveMs = DEFAULT_KEEP_ALIVE_MS;
  /** When the connection last went idle (Date.now()); the pool closes it after keepAliveMs. */
  idleSince = 0;
  /** The client connection whose PROXY header opened this one: it carries that client's requests only. */
  proxyKey: string | undefined;
  /** When the current exchange's response head must be complete (first_byte after the request). */
  private headDeadline = 0;
  private timeoutMs = 0;
  private timeoutKind: 'first byte' | 'idle' = 'first byte';
  private readonly parser: ResponseParser;
  closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly settings: ConnectionSettings,
    /** Called once the connection can carry another exchange, or when it closed. */
    private readonly onFree: (connection: MemberConnection, reusable: boolean) => void,
  ) {
    this.parser = new ResponseParser(this, settings.responseHeadBytes);
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.read(data));
    socket.on('end', () => this.ended());
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error.message, error));
    socket.on('close', () => this.closedByPeer());
    socket.on('timeout', () => this.timedOut());
  }

  /**
   * Opens a connection (`header`: the PROXY protocol header to open it with); rejects with a
   * connect-phase UpstreamError.
   */
  static open(
    url: URL,
    settings: ConnectionSettings,
    onFree: (connection: MemberConnection, reusable: boolean) => void,
    header?: Buffer,
  ): Promise<MemberConnection> {
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const socket = connectMember({ url, rejectUnauthorized: settings.verify, ALPNProtocols: ['http/1.1'], header });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new UpstreamError(`connect timeout after ${settings.connectTimeoutMs}ms`, {
            phase: 'connect',
            kind: 'timeout',
          }),
        );
      }, settings.connectTimeoutMs);
      const failed = (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const refused = CONNECT_CODES.has(error.code ?? '');
        reject(
          new UpstreamError(error.message, {
            phase: 'connect',
            kind: refused ? 'refused' : secure ? 'protocol' : 'network',
            cause: error,
          }),
        );
      };
      socket.on('error', failed);
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        resolve(new MemberConnection(socket, settings, onFree));
      });
    });
  }

  /** Sends one request; the exchange hears the response. */
  send(request: UpstreamRequest, exchange: ExchangeEvents): void {
    this.exchange = exchange;
    this.method = request.method;
    this.responded = false;
    this.parser.expect();
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    let framed = false;
    // Target, names and values come from llhttp's strict parse of the client's request (in Node's
    // server or the lane) or from the proxy itself, so they hold no CR or LF; latin1 writes header
    // bytes back exactly as they were read.
    for (const [name, value] of request.headers) {
      if (name === 'content-length') framed = true;
      head += `${name}: ${value}\r\n`;
    }
    const body = request.body;
    const chunked = body !== null && !framed && request.contentLength === undefined;
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    else if (body === null && !framed && BODY_METHODS.has(request.method)) head += 'content-length: 0\r\n';
    // Timers are re-armed only when the value changes (both default to a minute): a re-armed socket
    // timer per request was measurable; keep-alive expiry is the pool's sweep, not a socket timer.
    this.setTimeout(this.settings.firstByteTimeoutMs, 'first byte');
    this.headDeadline = Date.now() + this.settings.firstByteTimeoutMs;
    head += '\r\n';
    if (body) this.writeBody(head, body, chunked);
    else this.socket.write(head, 'latin1');
  }

  /** Gives up on the current exchange: the connection is closed, never reused. */
  abort(error: Error): void {
    if (!this.exchange) return;
    this.fail(error.message, error);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Closes the connection; the pool hears of it once, through onFree. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopBody?.();
    this.socket.destroy();
    this.parser.free();
    this.onFree(this, false);
  }

  /**
   * Writes the head with the body's first bytes, not before: a body that fails before it starts (a
   * client's malformed chunk, caught by Node's parser after the headers) then sends the member nothing.
   */
  private writeBody(head: string, body: Readable, chunked: boolean): void {
    const socket = this.socket;
    let headSent = false;
    const sendHead = () => {
      headSent = true;
      socket.write(head, 'latin1');
    };
    const onDrain = () => body.resume();
    const cleanup = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      socket.off('drain', onDrain);
      this.stopBody = undefined;
    };
    this.stopBody = () => {
      cleanup();
      body.destroy();
    };
    const onData = (data: Buffer) => {
      if (data.length === 0) return;
      let ok: boolean;
      socket.cork();
      if (!headSent) sendHead();
      if (chunked) {
        socket.write(`${data.length.toString(16)}\r\n`);
        socket.write(data);
        ok = socket.write('\r\n');
      } else {
        ok = socket.write(data);
      }
      socket.uncork();
      if (!ok) body.pause();
    };
    const onEnd = () => {
      cleanup();
      socket.cork();
      if (!headSent) sendHead();
      if (chunked) socket.write('0\r\n\r\n');
      socket.uncork();
    };
    const onError = (error: Error) => {
      cleanup();
      this.fail(`request body failed: ${error.message}`, error);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    socket.on('drain', onDrain);
  }

  private read(data: Buffer): void {
    const error = this.parser.execute(data);
    if (typeof error === 'string') {
      const tooLarge = this.parser.headTooLarge;
      this.fail(
        tooLarge
          ? `response head over limits.response_head (${this.settings.responseHeadBytes} bytes)`
          : `invalid response from member: ${error}`,
        undefined,
        'protocol',
      );
      return;
    }
    // Part of a head (split, or an interim 1xx) is in: the rest must come by the deadline, however the
    // bytes trickle, so the socket's inactivity timer is shortened to what is left of it.
    if (this.exchange !== undefined && !this.responded) {
      const left = this.headDeadline - Date.now();
      if (left <= 0) this.timedOut();
      else this.setTimeout(left, 'first byte');
    }
  }

  private ended(): void {
    // A response delimited by the close completes here; anything else was cut short.
    const error = this.parser.finish();
    this.fail(error ? `member closed the connection: ${error}` : 'member closed the connection');
  }

  private closedByPeer(): void {
    this.fail('member closed the connection');
  }

  private timedOut(): void {
    if (!this.exchange) {
      this.close();
      return;
    }
    if (this.timeoutKind === 'first byte')
      this.fail(`no complete response head within ${this.settings.firstByteTimeoutMs}ms`, undefined, 'timeout');
    else this.fail(`idle timeout after ${this.timeoutMs}ms`, undefined, 'timeout');
  }

  private setTimeout(ms: number, kind: MemberConnection['timeoutKind']): void {
    this.timeoutKind = kind;
    if (ms === this.timeoutMs) return;
    this.timeoutMs = ms;
    this.socket.setTimeout(ms);
  }

  /** Ends the current exchange with an error (if any) and closes the connection. */
  private fail(message: string, cause?: Error, kind?: 'timeout' | 'protocol'): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    if (exchange) {
      const reused = this.served > 0;
      const error = this.responded
        ? new UpstreamError(message, { phase: 'during-response', kind: kind ?? 'network', cause })
        : new UpstreamError(message, {
            phase: 'before-response',
            reusedConnection: reused && kind === undefined,
            kind: kind ?? 'network',
            cause,
          });
      exchange.responseError(error);
    }
    this.close();
  }

  // ResponseEvents, from the parser.

  headersComplete(
    status: number,
    statusText: string,
    headers: string[],
    upgrade: boolean,
    keepAlive: boolean,
  ): boolean {
    if (upgrade) {
      // Upgrades go through tunnels, never through a transport: a member switching protocols here is broken.
      this.fail('member switched protocols unasked', undefined, 'protocol');
      return true;
    }
    this.responded = true;
    this.keepAlive = keepAlive;
    if (keepAlive) this.keepAliveMs = keepAliveHint(headers);
    this.setTimeout(this.settings.idleTimeoutMs, 'idle');
    this.exchange?.responseHeaders(status, statusText, headers);
    return this.method === 'HEAD';
  }

  body(chunk: Buffer): void {
    this.exchange?.responseBody(chunk);
  }

  messageComplete(): void {
    const exchange = this.exchange;
    if (!exchange) return;
    this.exchange = undefined;
    this.served++;
    exchange.responseComplete();
    // A member may answer before the request body is all sent (an early 413): the connection then
    // cannot be reused, since the rest of the body would be read as a new request.
    if (this.stopBody || !this.keepAlive || this.keepAliveMs <= 0) this.close();
    else this.onFree(this, true);
  }
}

/** Idle lifetime from `Keep-Alive: timeout=N`, a second early; the default without one. */
function keepAliveHint(headers: string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length !== 10 || headers[i]!.toLowerCase() !== 'keep-alive') continue;
    const match = /timeout=(\d+)/i.exec(headers[i + 1]!);
    if (match) return Math.max(0, Number(match[1]) * 1000 - KEEP_ALIVE_MARGIN_MS);
  }
  return DEFAULT_KEEP_ALIVE_MS;
}
