// HTTP/1.1 transport to http:// and https:// members: a pool of keep-alive connections per member
// (bounded: pool_max open, pool_idle kept idle; requests past pool_max wait their turn, at most
// limits.queue of them and each for timeouts.queue at most, as HAProxy's maxqueue and timeout queue), each parsing
// with llhttp (connection.ts). Chosen over undici's Pool by measurement: the same parser without a general
// client's bookkeeping cost about a fifth less CPU per request (docs/benchmarks.md).
import { Readable } from 'node:stream';
import type { MemberConfig } from '../../config/schema.js';
import { MemberConnection, type ConnectionSettings, type ExchangeEvents } from './connection.js';
import { clientEnds, proxyHeader } from '../proxy-protocol.js';
import type { ClientInfo, Transport, UpstreamRequest, UpstreamResponse } from '../member-transport.js';
import { UpstreamError } from '../errors.js';
import type { TransportSettings } from '../transport-factory.js';

class ResponseBody extends Readable {
  /** The member's socket was paused because this stream was full. */
  paused = false;
  constructor(private readonly exchange: Exchange) {
    super();
  }
  override _read(): void {
    if (this.paused) {
      this.paused = false;
      this.exchange.connection?.resume();
    }
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.dropped(error ?? new Error('response body destroyed'));
    callback(error);
  }
}

/** How often idle connections are checked against their keep-alive time (which has a second's margin). */
const SWEEP_MS = 250;

/** Bytes held before the forwarder takes the body: past this, the member's socket is paused. */
const HELD_BYTES = 64 * 1024;

/**
 * One request and its response. The response is handed over when its headers are parsed, and the
 * forwarder runs a microtask later, after the parser has gone through the rest of that socket read.
 * Until the forwarder asks for `body`, chunks are held here; a small response is then usually complete,
 * and `whole()` gives it to the forwarder to answer in one write with no stream in between.
 */
class Exchange implements ExchangeEvents, UpstreamResponse {
  status = 0;
  statusMessage = '';
  headers: [string, string][] = [];
  connection: MemberConnection | undefined;
  private stream: ResponseBody | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private complete = false;
  private failure: UpstreamError | undefined;
  private responded = false;
  /** Over: completed, failed or dropped. */
  done = false;

  constructor(
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: UpstreamError) => void,
  ) {}

  get body(): Readable {
    if (this.stream) return this.stream;
    const stream = new ResponseBody(this);
    this.stream = stream;
    for (const chunk of this.held) stream.push(chunk);
    this.held = [];
    if (this.failure) stream.destroy(this.failure);
    else if (this.complete) stream.push(null);
    else if (this.heldBytes >= HELD_BYTES) this.connection?.resume();
    return stream;
  }

  whole(): Buffer | undefined {
    if (this.stream || !this.complete) return undefined;
    const chunks = this.held;
    this.held = [];
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  /** The forwarder let go of the body (client gone, or an error), or gave up waiting: abandon the exchange. */
  dropped(error: Error): void {
    if (!this.done) this.connection?.abort(error);
  }

  responseHeaders(status: number, statusText: string, raw: string[]): void {
    for (let i = 0; i < raw.length; i += 2) this.headers.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
    this.status = status;
    this.statusMessage = statusText;
    this.responded = true;
    this.resolve(this);
  }

  responseBody(chunk: Buffer): void {
    const stream = this.stream;
    if (stream) {
      if (!stream.push(chunk)) {
        stream.paused = true;
        this.connection?.pause();
      }
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= HELD_BYTES) this.connection?.pause();
  }

  responseComplete(): void {
    this.done = true;
    this.complete = true;
    // Paused for a client that reads slowly, the socket would stay paused once the body has ended (no
    // read follows an end): the connection goes back to the pool, and must read its next response.
    const stream = this.stream;
    if (stream ? stream.paused : this.heldBytes >= HELD_BYTES) {
      if (stream) stream.paused = false;
      this.connection?.resume();
    }
    stream?.push(null);
  }

  responseError(error: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    if (!this.responded) {
      this.reject(error);
      return;
    }
    this.failure = error;
    this.stream?.destroy(error);
  }
}

interface Waiter {
  /** With proxy_protocol: the client connection this request came on (proxyKey). */
  key?: string;
  /** With proxy_protocol: the header that opens a connection for it. */
  header?: () => Buffer;
  take(connection: MemberConnection): void;
  fail(error: UpstreamError): void;
  /** While queued: the timer of timeouts.queue (armed only for a request that has to wait). */
  queued?: NodeJS.Timeout;
}

/** The queue and its deadline, as the pool applies them. */
interface QueueLimits {
  max: number;
  timeoutMs: number;
}

const QUEUE_FULL = 'the member is busy: its connections and queue (limits.pool_max, limits.queue) are full';
const QUEUE_TIMEOUT = 'the member is busy: no connection free within timeouts.queue';

function queueTimedOut(pool: MemberPool, waiter: Waiter): void {
  pool.forget(waiter);
  waiter.fail(new UpstreamError(QUEUE_TIMEOUT, { phase: 'queue', kind: 'timeout' }));
}

/** One client connection's identity, as a PROXY header gives it (HAProxy reuses a connection only for the same header). */
function proxyKey(client: ClientInfo): string {
  return `${client.address} ${client.port} ${client.serverAddress ?? ''} ${client.serverPort}`;
}

function clientHeader(version: 'v1' | 'v2', client: ClientInfo): Buffer {
  return proxyHeader(version, ...clientEnds(client.address, client.port, client.serverAddress, client.serverPort));
}

/** The keep-alive connections to one member. */
class MemberPool {
  private readonly idle: MemberConnection[] = [];
  private readonly waiting: Waiter[] = [];
  /** Connections open or opening. */
  private open = 0;
  private closed = false;
  /** Closes idle connections past their keep-alive time; runs while any are idle. */
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: URL,
    private readonly settings: ConnectionSettings,
    private readonly max: number,
    private readonly maxIdle: number,
    private readonly queue: QueueLimits,
  ) {}

  /**
   * A connection for one exchange: an idle one (newest first), a new one, or the next one freed. With
   * proxy_protocol, only one opened for the same client connection: at pool_max, the oldest idle one of
   * another client is closed to make room.
   */
  acquire(waiter: Waiter): void {
    if (this.closed) return waiter.fail(new UpstreamError('transport closed', { phase: 'before-send' }));
    const key = waiter.key;
    const connection = key === undefined ? this.idle.pop() : this.takeIdle(key);
    if (connection) return waiter.take(connection);
    if (key !== undefined && this.open >= this.max) this.idle[0]?.close();
    if (this.open >= this.max) {
      if (this.waiting.length >= this.queue.max)
        return waiter.fail(new UpstreamError(QUEUE_FULL, { phase: 'queue', kind: 'refused' }));
      waiter.queued = setTimeout(queueTimedOut, this.queue.timeoutMs, this, waiter);
      this.waiting.push(waiter);
      return;
    }
    this.open++;
    MemberConnection.open(this.url, this.settings, (c, reusable) => this.release(c, reusable), waiter.header?.()).then(
      (fresh) => {
        fresh.proxyKey = key;
        waiter.take(fresh);
      },
      (error: UpstreamError) => {
        this.open--;
        waiter.fail(error);
        this.next();
      },
    );
  }

  /** The newest idle connection opened for `key`. */
  private takeIdle(key: string): MemberConnection | undefined {
    for (let i = this.idle.length - 1; i >= 0; i--)
      if (this.idle[i]!.proxyKey === key) return this.idle.splice(i, 1)[0];
    return undefined;
  }

  /** Takes a waiter out of the queue (its request was cancelled, or its wait ran out). */
  forget(waiter: Waiter): void {
    const i = this.waiting.indexOf(waiter);
    if (i >= 0) this.waiting.splice(i, 1);
    clearTimeout(waiter.queued);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const connection of this.idle.splice(0)) connection.close();
    for (const waiter of this.waiting.splice(0)) {
      clearTimeout(waiter.queued);
      waiter.fail(new UpstreamError('transport closed', { phase: 'before-send' }));
    }
  }

  /** The longest waiter, its wait over. */
  private dequeue(): Waiter | undefined {
    const waiter = this.waiting.shift();
    if (waiter) clearTimeout(waiter.queued);
    return waiter;
  }

  /** A connection is free again (reusable), or closed. */
  release(connection: MemberConnection, reusable: boolean): void {
    if (!reusable) {
      this.open--;
      const i = this.idle.indexOf(connection);
      if (i >= 0) this.idle.splice(i, 1);
      this.next();
      return;
    }
    if (this.waiting[0] && this.waiting[0].key !== connection.proxyKey) {
      // Another client's connection: closed, which makes room for one of the waiter's own.
      connection.close();
      return;
    }
    const waiter = this.dequeue();
    if (waiter) return waiter.take(connection);
    if (this.closed || this.idle.length >= this.maxIdle) {
      connection.close();
      return;
    }
    connection.idleSince = Date.now();
    this.idle.push(connection);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  private sweep(): void {
    const now = Date.now();
    // Oldest first: connections are taken from and given back to the end.
    for (const connection of this.idle.slice())
      if (now - connection.idleSince >= connection.keepAliveMs) connection.close();
    if (this.idle.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Room for another connection: opens one for the longest waiter. */
  private next(): void {
    const waiter = this.dequeue();
    if (waiter) this.acquire(waiter);
  }
}

export function createHttpTransport(url: URL, member: MemberConfig, settings: TransportSettings): Transport {
  const version = member.proxy_protocol;
  const pool = new MemberPool(
    url,
    {
      connectTimeoutMs: settings.connectTimeoutMs,
      firstByteTimeoutMs: settings.firstByteTimeoutMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      responseHeadBytes: settings.responseHeadBytes,
      verify: member.tls_verify,
    },
    settings.poolMax,
    settings.poolIdle,
    { max: settings.queueMax, timeoutMs: settings.queueTimeoutMs },
  );
  return {
    request(request: UpstreamRequest): Promise<UpstreamResponse> {
      return new Promise<UpstreamResponse>((resolve, reject) => {
        const exchange = new Exchange(resolve, reject);
        const signal = request.signal;
        const waiter: Waiter = {
          take(connection) {
            if (signal.aborted) {
              pool.release(connection, true);
              exchange.responseError(new UpstreamError('cancelled', { phase: 'before-send' }));
              return;
            }
            exchange.connection = connection;
            connection.send(request, exchange);
          },
          fail: (error) => exchange.responseError(error),
        };
        if (version !== undefined) {
          waiter.key = proxyKey(request.client);
          waiter.header = () => clientHeader(version, request.client);
        }
        signal.addEventListener('abort', () => {
          if (exchange.done) return;
          if (exchange.connection) exchange.dropped(signal.reason as Error);
          else {
            pool.forget(waiter);
            exchange.responseError(new UpstreamError('cancelled', { phase: 'before-send' }));
          }
        });
        pool.acquire(waiter);
      });
    },
    close: () => {
      pool.close();
      return Promise.resolve();
    },
  };
}
