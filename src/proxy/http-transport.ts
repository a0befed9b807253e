// HTTP/1.1 transport to http:// and https:// members: an undici Pool per member (keep-alive, bounded
// connections) driven through dispatch(), so response bytes flow callback by callback into a small
// Readable whose backpressure pauses the member's socket.
import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { MemberConfig } from '../config/schema.js';
import { UpstreamError, type Transport, type UpstreamRequest, type UpstreamResponse } from './transport.js';
import type { TransportSettings } from './transports.js';

type Controller = Dispatcher.DispatchController;

class ResponseBody extends Readable {
  ended = false;
  constructor(private readonly controller: Controller) {
    super();
  }
  override _read(): void {
    if (this.controller.paused) this.controller.resume();
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.ended && !this.controller.aborted) this.controller.abort(error ?? new Error('response body destroyed'));
    callback(error);
  }
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

function toUpstreamError(error: Error, responded: boolean): UpstreamError {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (responded) return new UpstreamError(error.message, 'during-response', false, code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : 'network', { cause: error });
  if (CONNECT_CODES.has(code)) {
    return new UpstreamError(error.message, 'connect', false, code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : 'refused', { cause: error });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError(error.message, 'before-response', false, 'timeout', { cause: error });
  // A socket closed or reset before any response byte: on a keep-alive pool this is typically an idle
  // connection the member closed just as it was reused, which the forwarder retries once.
  const stale = code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
  return new UpstreamError(error.message, 'before-response', stale, code.startsWith('UND_ERR_INVALID') || code === 'HPE_INVALID' ? 'protocol' : 'network', { cause: error });
}

class Exchange implements Dispatcher.DispatchHandler {
  body: ResponseBody | undefined;
  controller: Controller | undefined;
  constructor(
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: UpstreamError) => void,
    private readonly signal: AbortSignal,
  ) {}

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.signal.aborted) controller.abort(this.signal.reason as Error);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode < 200) return;
    const pairs: [string, string][] = [];
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (typeof value === 'string') pairs.push([name, value]);
      else for (const v of value) pairs.push([name, v]);
    }
    this.body = new ResponseBody(controller);
    this.resolve({ status: statusCode, statusMessage: statusMessage ?? '', headers: pairs, body: this.body });
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.body && !this.body.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    if (!this.body) return;
    this.body.ended = true;
    this.body.push(null);
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (this.body) {
      this.body.ended = true;
      this.body.destroy(toUpstreamError(error, true));
    } else {
      this.reject(toUpstreamError(error, false));
    }
  }
}

export function createHttpTransport(url: URL, member: MemberConfig, settings: TransportSettings): Transport {
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
        request.signal.addEventListener(
          'abort',
          () => {
            if (exchange.controller && !exchange.controller.aborted) exchange.controller.abort(request.signal.reason as Error);
          },
          { once: true },
        );
        pool.dispatch({ method: request.method, path: request.path, headers, body: request.body }, exchange);
      });
    },
    close: () => pool.close(),
  };
}
