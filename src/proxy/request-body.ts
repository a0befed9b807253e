// The client's request body as the transport sees it: a Readable that starts pulling from the client
// only when the transport first reads. Until then a failed attempt can be retried elsewhere with the body
// intact, and a transport destroying it on error never destroys the client's connection.
import { Readable } from 'node:stream';

export class RequestBody extends Readable {
  started = false;
  private readonly onData = (chunk: Buffer) => {
    if (!this.push(chunk)) this.source.pause();
  };
  private readonly onEnd = () => this.push(null);
  private readonly onError = (error: Error) => this.destroy(error);

  /** The client's request: Node's IncomingMessage, or an HTTP/2 stream. */
  constructor(private readonly source: Readable) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    if (!this.started) {
      this.started = true;
      this.source.on('data', this.onData);
      this.source.on('end', this.onEnd);
      this.source.on('error', this.onError);
      if (this.source.readableEnded) this.push(null);
    }
    this.source.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.source.off('data', this.onData);
    this.source.off('end', this.onEnd);
    this.source.off('error', this.onError);
    callback(error);
  }
}
