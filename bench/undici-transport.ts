// The engine Dayshift shipped before its own member connections (src/proxy/http1/), kept for the
// benchmark's engine comparison (BENCH_ENGINES=1): an undici Pool per member driven through dispatch(),
// response bytes flowing callback by callback into a small Readable whose backpressure pauses the socket.
import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { MemberConfig } from '../src/config/schema.js';
import type { Cancellation, Transport, UpstreamRequest, UpstreamResponse } from '../src/proxy/member-transport.js';
import { UpstreamError } from '../src/proxy/errors.js';
import type { TransportSettings } from '../src/proxy/transport-factory.js';

class ResponseBody extends Readable {
  ended = false;
  paused = false;
  constructor(
    private readonly resumeMember: () => void,
    private readonly abort: (error: Error) => void,
  ) {
    super();
  }
  override _read(): void {
    if (this.paused) {
      this.paused = false;
      this.resumeMember();
    }
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.ended) this.abort(error ?? new Error('response body destroyed'));
    callback(error);
  }
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function toUpstreamError(error: Error, responded: boolean): UpstreamError {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (responded)
    return new UpstreamError(error.message, {
      phase: 'during-response',
      kind: code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : 'network',
      cause: error,
    });
  if (CONNECT_CODES.has(code)) {
    return new UpstreamError(error.message, {
      phase: 'connect',
      kind: code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : 'refused',
      cause: error,
    });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT')
    return new UpstreamError(error.message, { phase: 'before-response', kind: 'timeout', cause: error });
  // A socket closed or reset before any response byte: on a keep-alive pool this is typically an idle
  // connection the member closed just as it was reused, which the forwarder retries once.
  const stale = code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
  return new UpstreamError(error.message, {
    phase: 'before-response',
    reusedConnection: stale,
    kind: code.startsWith('UND_ERR_INVALID') || code === 'HPE_INVALID' ? 'protocol' : 'network',
    cause: error,
  });
}

/**
 * One exchange, on undici's raw handler callbacks (onConnect/onHeaders/onData/onComplete/onError): they
 * hand over raw header buffers and take backpressure as a return value, with no header object built and
 * re-flattened on the way (the newer controller API wraps these same callbacks).
 */
class Exchange implements Dispatcher.DispatchHandler {
  body: ResponseBody | undefined;
  abortExchange: ((error: Error) => void) | undefined;
  done = false;
  constructor(
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: UpstreamError) => void,
    private readonly signal: Cancellation,
  ) {}

  onConnect(abort: (error?: Error) => void): void {
    this.abortExchange = abort;
    if (this.signal.aborted) abort(this.signal.reason as Error);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true;
    const pairs: [string, string][] = [];
    for (let i = 0; i < rawHeaders.length; i += 2)
      pairs.push([rawHeaders[i]!.toString('latin1').toLowerCase(), rawHeaders[i + 1]!.toString('latin1')]);
    this.body = new ResponseBody(resume, (error) => {
      if (!this.done) this.abortExchange?.(error);
    });
    this.resolve({ status: statusCode, statusMessage: statusText, headers: pairs, body: this.body });
    return true;
  }

  onData(chunk: Buffer): boolean {
    const body = this.body!;
    if (body.push(chunk)) return true;
    body.paused = true;
    return false;
  }

  onComplete(): void {
    this.done = true;
    if (!this.body) return;
    this.body.ended = true;
    this.body.push(null);
  }

  onError(error: Error): void {
    this.done = true;
    if (this.body) {
      this.body.ended = true;
      this.body.destroy(toUpstreamError(error, true));
    } else {
      this.reject(toUpstreamError(error, false));
    }
  }
}

export function createUndiciTransport(url: URL, member: MemberConfig, settings: TransportSettings): Transport {
  const pool = new Pool(url.origin, {
    connections: settings.poolMax,
    pipelining: 1,
    headersTimeout: settings.firstByteTimeoutMs,
    bodyTimeout: settings.idleTimeoutMs,
    connect: { timeout: settings.connectTimeoutMs, rejectUnauthorized: member.tls_verify },
  });
  return {
    request(request: UpstreamRequest): Promise<UpstreamResponse> {
      const headers: string[] = [];
      for (const [name, value] of request.headers) headers.push(name, value);
      return new Promise<UpstreamResponse>((resolve, reject) => {
        const exchange = new Exchange(resolve, reject, request.signal);
        request.signal.addEventListener('abort', () => {
          if (!exchange.done) exchange.abortExchange?.(request.signal.reason as Error);
        });
        pool.dispatch({ method: request.method, path: request.path, headers, body: request.body }, exchange);
      });
    },
    close: () => pool.close(),
  };
}
