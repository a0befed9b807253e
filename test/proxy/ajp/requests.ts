// Building UpstreamRequests and reading UpstreamResponses in the AJP tests.
import { Readable } from 'node:stream';
import type { ClientInfo, UpstreamRequest, UpstreamResponse } from '../../../src/proxy/member-transport.js';

export const plainClient: ClientInfo = {
  address: '127.0.0.1',
  port: 44444,
  secure: false,
  serverName: 'example.test',
  serverPort: 80,
};

export function upstreamRequest(overrides: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: 'GET',
    path: '/echo.jsp',
    headers: [['host', 'example.test']],
    body: null,
    client: plainClient,
    signal: new AbortController().signal,
    ...overrides,
  };
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function readJson<T>(response: UpstreamResponse): Promise<T> {
  return JSON.parse((await readAll(response.body)).toString('utf8')) as T;
}

/**
 * A request body of `size` deterministic bytes, produced lazily in `piece`-byte chunks; `pulled` counts
 * what the consumer has taken so far (to see backpressure).
 */
export function generatedBody(
  size: number,
  piece = 64 * 1024,
): { stream: Readable; pulled: () => number; bytes: () => Buffer } {
  let produced = 0;
  const stream = new Readable({
    highWaterMark: piece,
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(piece, size - produced);
      this.push(pattern(produced, n));
      produced += n;
    },
  });
  return { stream, pulled: () => produced, bytes: () => pattern(0, size) };
}

/** Byte i of the generated body is (i * 31 + 7) mod 251: no period that lines up with packet sizes. */
export function pattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = ((offset + i) * 31 + 7) % 251;
  return b;
}

/** Polls `check` until it is true or the deadline passes. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
