// One TCP connection to an AJP connector, carrying one exchange at a time. The request body is sent only
// as the container asks for it (Get Body Chunk), the response body is a Readable that pauses the socket
// when its reader falls behind. Any protocol violation or socket failure fails the current exchange with
// an UpstreamError whose phase says how far it got, and closes this connection; nothing else is touched.
import { STATUS_CODES } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Cancellation, FailurePhase, UpstreamResponse } from '../member-transport.js';
import { AjpProtocolError, UpstreamError } from '../errors.js';
import { BodySource } from './body-source.js';
import { decodeContainerMessage, PacketReader, type ContainerMessage } from './decoder.js';
import { CPING, encodeBodyChunk, encodeForwardRequest, END_OF_BODY, type ForwardRequest } from './encoder.js';
import { maxRequestChunk } from './protocol.js';
import { messageOf } from '../../errors.js';

export interface ExchangeOptions {
  /** The connection was taken idle from the pool (reported in UpstreamError.reusedConnection). */
  reused: boolean;
  signal: Cancellation;
  /** From the request sent to the response headers; 0 = no limit. */
  firstByteTimeoutMs: number;
  /** No bytes either way on the socket for this long fails the exchange; 0 = no limit. */
  idleTimeoutMs: number;
}

export interface ExchangeBody {
  stream: Readable;
  /** undefined = unknown length: sent only when Tomcat asks (chunked upload). */
  contentLength: number | undefined;
}

type Phase = 'sending' | 'waiting' | 'streaming';

/** A 403 body larger than this is streamed: the connector's own refusal page is well under it. */
const HELD_403_LIMIT = 64 * 1024;

interface Exchange {
  phase: Phase;
  reused: boolean;
  resolve: (response: UpstreamResponse) => void;
  reject: (err: UpstreamError) => void;
  response: ResponseBody | null;
  body: BodySource | null;
  /** The request body's declared length, and what was sent of it so far. */
  bodyLength: number | undefined;
  bodySent: number;
  /** A body chunk is being read from the client: the socket is not between packets on our side. */
  bodySending: boolean;
  firstByteTimer: NodeJS.Timeout | undefined;
  /**
   * A 403 may be the AJP connector refusing the secret: Tomcat then ends with reuse=false. The (small)
   * response is held until End Response tells which it is.
   */
  held: { headers: Extract<ContainerMessage, { type: 'headers' }>; chunks: Buffer[]; bytes: number } | null;
  cleanup: () => void;
}

/** Called when an exchange is over: reusable = the connection may carry the next one. */
export type ReleaseCallback = (connection: AjpConnection, reusable: boolean) => void;

export class AjpConnection {
  private readonly reader: PacketReader;
  private exchange: Exchange | null = null;
  private pong: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private dead = false;
  /** When the connection last finished an exchange (for CPing-before-reuse). */
  idleSince = Date.now();

  private constructor(
    private readonly socket: Socket,
    private readonly packetSize: number,
    private readonly onClose: (connection: AjpConnection) => void,
  ) {
    this.reader = new PacketReader(packetSize);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onSocketEnd(err));
    socket.on('close', () => this.onSocketEnd(undefined));
    socket.on('timeout', () => this.fail('timeout', 'no bytes exchanged with the member within the idle timeout'));
  }

  /** Opens a connection; rejects with an UpstreamError of phase 'connect'. */
  static open(
    host: string,
    port: number,
    options: {
      packetSize: number;
      connectTimeoutMs: number;
      signal?: Cancellation;
      onClose: (connection: AjpConnection) => void;
    },
  ): Promise<AjpConnection> {
    return new Promise((resolve, reject) => {
      // The signal is watched only while connecting: the socket outlives this request in the pool.
      const socket = connect({ host, port });
      const settle = (err: UpstreamError | null): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        if (!err) {
          resolve(new AjpConnection(socket, options.packetSize, options.onClose));
          return;
        }
        socket.destroy();
        reject(err);
      };
      const timer =
        options.connectTimeoutMs > 0
          ? setTimeout(
              () =>
                settle(
                  new UpstreamError(`connect to ajp://${host}:${port} timed out after ${options.connectTimeoutMs} ms`, {
                    phase: 'connect',
                    kind: 'timeout',
                  }),
                ),
              options.connectTimeoutMs,
            )
          : undefined;
      const onAbort = (): void => settle(abortError(options.signal!, 'connect', false));
      const onError = (err: NodeJS.ErrnoException): void => {
        const kind = err.code === 'ECONNREFUSED' ? 'refused' : 'network';
        settle(
          new UpstreamError(`connect to ajp://${host}:${port} failed: ${err.message}`, {
            phase: 'connect',
            kind,
            cause: err,
          }),
        );
      };
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      options.signal?.addEventListener('abort', onAbort);
      socket.once('error', onError);
      socket.once('connect', () => settle(null));
    });
  }

  get closed(): boolean {
    return this.dead;
  }

  /** CPing → CPong within timeoutMs, on an idle connection. Rejects (and closes it) otherwise. */
  ping(timeoutMs: number): Promise<void> {
    if (this.dead) return Promise.reject(new Error('connection closed'));
    if (this.exchange || this.pong) return Promise.reject(new Error('connection busy'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pong = null;
        this.destroy();
        reject(
          new UpstreamError(`no CPong within ${timeoutMs} ms`, {
            phase: 'before-send',
            reusedConnection: true,
            kind: 'timeout',
          }),
        );
      }, timeoutMs);
      this.pong = {
        resolve: () => {
          clearTimeout(timer);
          this.pong = null;
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          this.pong = null;
          reject(err);
        },
      };
      this.socket.write(CPING);
    });
  }

  /** Runs one exchange; resolves at the response headers. `release` is called once when it is over. */
  request(
    forward: ForwardRequest,
    body: ExchangeBody | null,
    options: ExchangeOptions,
    release: ReleaseCallback,
  ): Promise<UpstreamResponse> {
    if (this.dead)
      return Promise.reject(
        new UpstreamError('connection closed', { phase: 'before-send', reusedConnection: options.reused }),
      );
    if (this.exchange || this.pong) throw new Error('AjpConnection carries one exchange at a time');
    let packet: Buffer;
    try {
      packet = encodeForwardRequest(forward, this.packetSize);
    } catch (err) {
      release(this, true);
      return Promise.reject(
        new UpstreamError(messageOf(err), {
          phase: 'before-send',
          reusedConnection: options.reused,
          kind: 'protocol',
          cause: err,
        }),
      );
    }
    if (options.signal.aborted) {
      release(this, true);
      return Promise.reject(abortError(options.signal, 'before-send', options.reused));
    }
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const onAbort = (): void => {
        const ex = this.exchange;
        if (!ex) return;
        this.failExchange(abortError(options.signal, externalPhase(ex.phase), ex.reused));
      };
      options.signal.addEventListener('abort', onAbort);
      const ex: Exchange = {
        phase: 'sending',
        reused: options.reused,
        resolve,
        reject,
        response: null,
        body: body ? new BodySource(body.stream) : null,
        bodyLength: body?.contentLength,
        bodySent: 0,
        bodySending: false,
        firstByteTimer: undefined,
        held: null,
        cleanup: () => {
          options.signal.removeEventListener('abort', onAbort);
          clearTimeout(ex.firstByteTimer);
          this.socket.setTimeout(0);
        },
      };
      this.exchange = ex;
      this.release = release;
      if (options.idleTimeoutMs > 0) this.socket.setTimeout(options.idleTimeoutMs);
      this.socket.write(packet, (err) => {
        if (err || this.exchange !== ex) return;
        if (ex.phase === 'sending') ex.phase = 'waiting';
        // Headers may already be in (and held, for a 403): then there is nothing to time.
        if (options.firstByteTimeoutMs > 0 && ex.phase === 'waiting' && !ex.held) {
          ex.firstByteTimer = setTimeout(() => {
            if (this.exchange === ex && ex.phase === 'waiting' && !ex.held) {
              this.fail('timeout', `no response headers from the member within ${options.firstByteTimeoutMs} ms`);
            }
          }, options.firstByteTimeoutMs);
        }
      });
      // Tomcat reads the first chunk of a body with a known length without asking for it.
      if (body && body.contentLength !== undefined && body.contentLength > 0)
        this.sendBodyChunk(ex, maxRequestChunk(this.packetSize));
    });
  }

  /** Closes the socket; a running exchange fails. */
  destroy(): void {
    if (!this.dead) this.fail('network', 'connection closed by the proxy');
  }

  private release: ReleaseCallback = () => undefined;

  private onData(chunk: Buffer): void {
    let payloads: Buffer[];
    try {
      payloads = this.reader.push(chunk);
      for (const payload of payloads) {
        if (this.dead) return;
        this.handle(decodeContainerMessage(payload));
      }
    } catch (err) {
      if (err instanceof AjpProtocolError)
        this.fail('protocol', `the member sent a malformed AJP packet: ${err.message}`, err);
      else throw err;
    }
  }

  private handle(message: ContainerMessage): void {
    const ex = this.exchange;
    if (!ex) {
      if (message.type === 'cpong' && this.pong) {
        this.idleSince = Date.now();
        this.pong.resolve();
        return;
      }
      throw new AjpProtocolError(`unexpected ${message.type} message on an idle connection`);
    }
    switch (message.type) {
      case 'get-body':
        if (ex.bodySending) throw new AjpProtocolError('Get Body Chunk while a chunk is still being sent');
        this.sendBodyChunk(ex, Math.min(message.size || Infinity, maxRequestChunk(this.packetSize)));
        return;
      case 'headers':
        if (ex.phase === 'streaming' || ex.held) throw new AjpProtocolError('second Send Headers in one response');
        clearTimeout(ex.firstByteTimer);
        if (message.status === 403) {
          ex.held = { headers: message, chunks: [], bytes: 0 };
          return;
        }
        this.startResponse(ex, message);
        return;
      case 'body':
        if (ex.held) {
          ex.held.chunks.push(message.data);
          ex.held.bytes += message.data.length;
          if (ex.held.bytes > HELD_403_LIMIT) this.releaseHeld(ex);
          return;
        }
        if (ex.phase !== 'streaming' || !ex.response) throw new AjpProtocolError('Send Body Chunk before Send Headers');
        if (message.data.length > 0 && !ex.response.push(message.data)) this.socket.pause();
        return;
      case 'end': {
        if (ex.held && !message.reuse) {
          this.fail(
            'protocol',
            "Tomcat refused the AJP request (403, connection closed) before it reached the application: the member's secret does not match the secret of Tomcat's AJP connector (or a request attribute is not allowed by its allowedRequestAttributesPattern)",
          );
          return;
        }
        if (ex.held) this.releaseHeld(ex);
        if (ex.phase !== 'streaming' || !ex.response) throw new AjpProtocolError('End Response before Send Headers');
        const reusable = message.reuse && !ex.bodySending;
        this.finish(ex);
        ex.response.push(null);
        if (!reusable) this.close();
        this.release(this, reusable && !this.dead);
        return;
      }
      case 'cpong':
        throw new AjpProtocolError('CPong in the middle of an exchange');
    }
  }

  /** A held 403 turned out to be the application's own answer: deliver it as any other response. */
  private releaseHeld(ex: Exchange): void {
    const held = ex.held!;
    ex.held = null;
    this.startResponse(ex, held.headers);
    for (const chunk of held.chunks) if (chunk.length > 0) ex.response!.push(chunk);
  }

  private startResponse(ex: Exchange, message: Extract<ContainerMessage, { type: 'headers' }>): void {
    ex.phase = 'streaming';
    ex.response = new ResponseBody(this, ex);
    // Tomcat 10 sends only the number as the message; a proxy writes the usual reason phrase instead.
    const statusMessage =
      message.statusMessage === '' || message.statusMessage === String(message.status)
        ? (STATUS_CODES[message.status] ?? '')
        : message.statusMessage;
    ex.resolve({ status: message.status, statusMessage, headers: message.headers, body: ex.response });
  }

  private sendBodyChunk(ex: Exchange, size: number): void {
    if (!ex.body) {
      // Bodiless request, or the body was already sent in full: "nothing more".
      this.socket.write(END_OF_BODY);
      return;
    }
    ex.bodySending = true;
    const source = ex.body;
    source.take(size).then(
      (data) => {
        if (this.exchange !== ex) return;
        ex.bodySending = false;
        if (data === null) {
          if (ex.bodyLength !== undefined && ex.bodySent < ex.bodyLength) {
            // Tomcat would take the short body for the whole one: the application must not see it.
            this.fail('network', `the request body ended after ${ex.bodySent} of its ${ex.bodyLength} bytes`);
            return;
          }
          ex.body = null;
          this.socket.write(END_OF_BODY);
          return;
        }
        ex.bodySent += data.length;
        this.socket.cork();
        for (const part of encodeBodyChunk(data)) this.socket.write(part);
        this.socket.uncork();
      },
      (err: Error) => {
        if (this.exchange !== ex) return;
        this.fail('network', `the request body failed: ${err.message}`, err);
      },
    );
  }

  /** The response reader went away before End Response: the exchange cannot be finished, so close. */
  abandon(ex: Exchange): void {
    if (this.exchange === ex) {
      this.finish(ex);
      this.close();
      this.release(this, false);
    }
  }

  resume(ex: Exchange): void {
    if (this.exchange === ex && !this.dead) this.socket.resume();
  }

  private finish(ex: Exchange): void {
    ex.cleanup();
    this.exchange = null;
    this.idleSince = Date.now();
    // Backpressure may have paused the socket just before End Response; the next exchange needs it flowing.
    if (!this.dead) this.socket.resume();
  }

  /** Idle pooled connections must not keep the process alive. */
  setIdle(idle: boolean): void {
    if (idle) this.socket.unref();
    else this.socket.ref();
  }

  private fail(kind: UpstreamError['kind'], message: string, cause?: unknown): void {
    const ex = this.exchange;
    if (ex)
      this.failExchange(
        new UpstreamError(message, { phase: externalPhase(ex.phase), reusedConnection: ex.reused, kind, cause }),
      );
    else {
      this.pong?.reject(new UpstreamError(message, { phase: 'before-send', reusedConnection: true, kind, cause }));
      this.close();
    }
  }

  private failExchange(err: UpstreamError): void {
    const ex = this.exchange;
    if (!ex) return;
    this.finish(ex);
    this.close();
    if (ex.response) ex.response.destroy(err);
    else ex.reject(err);
    this.release(this, false);
  }

  private onSocketEnd(err: Error | undefined): void {
    if (this.dead) return;
    const truncated = this.reader.buffered > 0 ? ' in the middle of a packet' : '';
    const what = err ? `connection error${truncated}: ${err.message}` : `the member closed the connection${truncated}`;
    this.fail('network', what, err);
    this.close();
  }

  private close(): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    this.onClose(this);
  }
}

/** The response body: pushing past its buffer pauses the socket, reading resumes it. */
class ResponseBody extends Readable {
  constructor(
    private readonly connection: AjpConnection,
    private readonly exchange: Exchange,
  ) {
    super();
  }

  override _read(): void {
    this.connection.resume(this.exchange);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.connection.abandon(this.exchange);
    callback(err);
  }
}

function externalPhase(phase: Phase): FailurePhase {
  return phase === 'sending' ? 'before-send' : phase === 'waiting' ? 'before-response' : 'during-response';
}

function abortError(signal: Cancellation, phase: FailurePhase, reused: boolean): UpstreamError {
  const reason: unknown = signal.reason;
  if (reason instanceof UpstreamError) return reason;
  const timeout = reason instanceof Error && reason.name === 'TimeoutError';
  return new UpstreamError(timeout ? 'the request timed out' : 'the request was aborted', {
    phase,
    reusedConnection: reused,
    kind: timeout ? 'timeout' : 'network',
    cause: reason,
  });
}
