// WebSocket over HTTP/2 (RFC 8441). A client opens it with an extended CONNECT (`:protocol websocket`) on
// a stream; members speak HTTP/1.1, so the member gets a GET with `Upgrade: websocket` and a
// Sec-WebSocket-Key of Dayshift's own (HTTP/2 has no key: the stream is the handshake). A 101 whose
// Sec-WebSocket-Accept answers that key makes the stream a tunnel, after a 200 to the client; any other
// answer is relayed on the stream as an ordinary response. Routing, refusals, timeouts and the count on
// the member (for drains) are those of HTTP/1.1 tunnels (tunnel.ts).
import { createHash, randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { H2Request, H2Response } from './h2.js';
import { endToEnd } from './headers.js';
import { ResponseParser } from './http1/llhttp.js';
import {
  HALF_CLOSE_MS,
  logUpgrade,
  openUpgrade,
  startUpgrade,
  SWITCHED,
  type TunnelContext,
  type UpgradeTarget,
} from './tunnel.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** RFC 6455 §1.3: what the member's Sec-WebSocket-Accept must be for our key. */
function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A refusal on the stream, in plain text as the HTTP/1.1 upgrades' (tunnel.ts). */
function answer(res: H2Response, status: number, location?: string): void {
  const text = `${status === 501 ? 'Only WebSocket can be tunnelled' : STATUS_CODES[status]}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain',
    'content-length': text.length,
    ...(location === undefined ? {} : { location }),
  });
  res.end(text);
}

export function handleH2Upgrade(ctx: TunnelContext, req: H2Request, res: H2Response, stream: ServerHttp2Stream): void {
  if (req.protocol !== 'websocket') return answer(res, 501);
  const key = randomBytes(16).toString('base64');
  const raw = [...req.rawHeaders, 'connection', 'Upgrade', 'upgrade', 'websocket', 'sec-websocket-key', key];
  const target = openUpgrade(ctx, req, 'GET', raw, (status, location) => answer(res, status, location));
  if (target) new H2Upgrade(ctx, target, res, stream, acceptFor(key));
}

/** One WebSocket over HTTP/2, from the member connection to a tunnel, or to an ordinary answer. */
class H2Upgrade {
  private phase: 'connecting' | 'answer' | 'relay' | 'tunnel' | 'closed' = 'connecting';
  private head: Buffer | undefined;
  private parser: ResponseParser | undefined;
  /** What the client got: 200 for a tunnel, or the member's other answer (for the access log). */
  private status: number | undefined;
  private readonly onData = (data: Buffer) => this.fromMember(data);

  constructor(
    private readonly ctx: TunnelContext,
    private readonly target: UpgradeTarget,
    private readonly res: H2Response,
    private readonly stream: ServerHttp2Stream,
    private readonly accept: string,
  ) {
    target.member.tunnels.add(stream);
    startUpgrade(ctx, target, {
      connected: () => (this.phase = 'answer'),
      fail: (status) => this.fail(status),
      ended: () => this.memberEnded(),
    });
    target.upstream.on('data', this.onData);
    stream.on('close', () => this.close());
  }

  private fromMember(data: Buffer): void {
    if (this.phase === 'relay') {
      if (typeof this.parser!.execute(data) === 'string') this.fail(502);
      return;
    }
    if (this.phase !== 'answer') return;
    const head = (this.head = this.head ? Buffer.concat([this.head, data]) : data);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > this.target.headBytes) this.fail(502);
      return;
    }
    this.head = undefined;
    if (SWITCHED.test(head.toString('latin1', 0, 13)))
      this.switch(head.toString('latin1', 0, end), head.subarray(end + 4));
    else this.relay(head);
  }

  /** 101: checked against our key, then a 200 to the client, and bytes both ways from now on. */
  private switch(headText: string, rest: Buffer): void {
    const { stream, res, target } = this;
    const upstream = target.upstream;
    const fields = headText
      .split('\r\n')
      .slice(1)
      .flatMap((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      });
    const kept: string[] = [];
    let accept: string | undefined;
    const ends = endToEnd(fields);
    for (let i = 0; i < ends.length; i += 2) {
      if (ends[i] === 'sec-websocket-accept') accept = ends[i + 1];
      else kept.push(ends[i]!, ends[i + 1]!);
    }
    if (accept !== this.accept) return this.fail(502);
    if (stream.destroyed) return this.close();
    try {
      res.writeHead(200, kept);
      res.flushHeaders();
    } catch {
      // A header Node refuses to send (bad characters from the member).
      return this.fail(502);
    }
    this.phase = 'tunnel';
    this.status = 200;
    upstream.setTimeout(0);
    upstream.off('data', this.onData);
    if (rest.length > 0) stream.write(rest);
    upstream.pipe(stream);
    stream.pipe(upstream);
    // No byte either way for timeouts.tunnel closes both sides; a half-closed tunnel gets a moment to flush.
    stream.setTimeout(target.timeouts.tunnel, () => this.close());
    const halfClosed = () => setTimeout(() => this.close(), HALF_CLOSE_MS).unref();
    upstream.on('end', halfClosed);
    stream.on('end', halfClosed);
  }

  /** Not switched: the member's answer goes to the client as an ordinary response on the stream. */
  private relay(head: Buffer): void {
    const { res, target } = this;
    const upstream = target.upstream;
    this.phase = 'relay';
    upstream.setTimeout(target.timeouts.idle);
    this.parser = new ResponseParser(
      {
        headersComplete: (status, _text, headers) => {
          try {
            res.writeHead(status, endToEnd(headers));
          } catch {
            this.fail(502);
            return true;
          }
          this.status = status;
          return false;
        },
        body: (chunk) => {
          if (res.write(chunk)) return;
          upstream.pause();
          res.once('drain', () => upstream.resume());
        },
        messageComplete: () => {
          res.end();
          this.release();
        },
      },
      target.headBytes,
    );
    if (typeof this.parser.execute(head) === 'string') this.fail(502);
  }

  private memberEnded(): void {
    if (this.phase === 'tunnel') return;
    // A body delimited by the member's close is complete now; anything else was cut short.
    if (this.phase === 'relay') this.parser!.finish();
    this.fail(502);
  }

  /** A status to the client when nothing was answered yet, else a cut stream (RST_STREAM). */
  private fail(status: number): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'tunnel') return this.close();
    if (this.stream.headersSent || this.stream.destroyed) {
      this.release();
      this.res.destroy();
    } else {
      this.release(status);
      answer(this.res, status);
    }
  }

  private release(status = this.status): void {
    this.phase = 'closed';
    logUpgrade(this.ctx, this.target, status);
    this.target.member.tunnels.delete(this.stream);
    this.parser?.free();
    this.target.upstream.destroy();
  }

  /** The tunnel is over (either side closed, or timeouts.tunnel): the stream ends with CANCEL. */
  private close(): void {
    if (this.phase === 'closed') return;
    this.release();
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }
}
