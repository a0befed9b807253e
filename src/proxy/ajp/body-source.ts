// Pulls the request body in pieces of at most N bytes, only when the container asks for them: AJP is
// pull-based (Get Body Chunk), so reading on demand is the backpressure. The stream is never destroyed
// here: it belongs to the client exchange, which may still need its socket for the response.
import type { Readable } from 'node:stream';

export class BodySource {
  private leftover: Buffer | null = null;
  private finished = false;

  private failure: Error | null = null;

  constructor(private readonly stream: Readable) {
    // We consume this stream, so its errors are ours to handle (reported by the next take()).
    stream.on('error', (err) => (this.failure ??= err));
  }

  /** Up to `max` bytes, or null when the body has ended. Rejects when the stream fails or is destroyed. */
  async take(max: number): Promise<Buffer | null> {
    while (true) {
      if (this.leftover) {
        const piece = this.leftover.subarray(0, max);
        this.leftover = this.leftover.length > max ? this.leftover.subarray(max) : null;
        return piece;
      }
      if (this.finished) return null;
      const chunk: unknown = this.stream.read();
      if (chunk !== null) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        if (buf.length > 0) this.leftover = buf;
        continue;
      }
      if (this.stream.readableEnded) {
        this.finished = true;
        return null;
      }
      if (this.failure ?? this.stream.errored) throw this.failure ?? this.stream.errored;
      if (this.stream.destroyed) throw new Error('the request body was aborted');
      await this.readable();
    }
  }

  private readable(): Promise<void> {
    const stream = this.stream;
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        stream.off('readable', onReady);
        stream.off('end', onReady);
        stream.off('close', onReady);
        stream.off('error', onError);
      };
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      stream.on('readable', onReady);
      stream.on('end', onReady);
      stream.on('close', onReady);
      stream.on('error', onError);
    });
  }
}
