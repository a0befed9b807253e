// How the forwarder talks to one member: the Transport interface and the exchange it carries. HTTP(S)
// and AJP members each have a transport (http1/transport.ts, ajp/transport.ts), built by scheme in
// transport-factory.ts. Bodies are streams both ways, so backpressure reaches the peer.
import type { Readable } from 'node:stream';

export interface ClientInfo {
  address: string;
  port: number;
  /** The client came over TLS. */
  secure: boolean;
  /** TLS details, when secure (AJP forwards them as attributes). */
  tls?: { cipher?: string; protocol?: string; sessionId?: string; keySize?: number; clientCert?: string };
  /** The listener's own address and port, and the Host the client asked for. */
  serverName: string;
  /** The listener's address as the client reached it (a PROXY header's destination, for members that take one). */
  serverAddress?: string;
  serverPort: number;
}

export interface UpstreamRequest {
  method: string;
  /** Origin-form target: path and query. */
  path: string;
  /** Headers as they go to the member: hop-by-hop removed, X-Forwarded-* set. Lower-case names. */
  headers: [name: string, value: string][];
  /** Request body, or null when the request has none. */
  body: Readable | null;
  /** Content-Length when known; undefined with a body means chunked / unknown length. */
  contentLength?: number;
  client: ClientInfo;
  /** The member's route id (AJP sends it as the jvm route attribute). */
  route?: string;
  /** Fires when the client has gone or a timeout ran out: the transport drops the exchange. */
  signal: Cancellation;
}

/**
 * The part of AbortSignal a transport listens to. The forwarder passes a lighter object of its own (an
 * AbortController per request was a measurable share of the hot path); AbortSignal fits too.
 */
export interface Cancellation {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A Cancellation that keeps its listeners in an array and fires them once. */
export class Cancel implements Cancellation {
  aborted = false;
  reason: unknown;
  private listeners: (() => void)[] | undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }
}

export interface UpstreamResponse {
  status: number;
  statusMessage: string;
  /** Lower-case names; repeated headers (Set-Cookie) as separate entries. */
  headers: [name: string, value: string][];
  /** The body as a stream (a transport may make it on first access). */
  readonly body: Readable;
  /**
   * The whole body, when it has already arrived complete and `body` was never touched: the forwarder
   * then answers in one write. Undefined means stream it; a transport may leave this out.
   */
  whole?(): Buffer | undefined;
}

/** Where an upstream exchange failed: decides whether a retry is safe. */
export type FailurePhase =
  /**
   * Never got a connection: the member's connections (limits.pool_max) and its queue (limits.queue)
   * were full (kind 'refused'), or the wait ran past timeouts.queue (kind 'timeout'). The member is
   * busy, not failing, and never saw the request: 503.
   */
  | 'queue'
  /** Never connected: always safe to send elsewhere. */
  | 'connect'
  /** Connected, but nothing of the request reached the member (e.g. reset before write). */
  | 'before-send'
  /** Request (partly) sent, no response headers: safe to retry only idempotent requests. */
  | 'before-response'
  /** Response started: cannot be retried. */
  | 'during-response';

export interface Transport {
  /** Sends one request; resolves when response headers arrived. Rejects with UpstreamError. */
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** A cheap liveness probe on a fresh or pooled connection (AJP CPing/CPong); HTTP transports may omit it. */
  ping?(timeoutMs: number): Promise<void>;
  /** Closes idle connections and refuses new requests. */
  close(): Promise<void>;
}
