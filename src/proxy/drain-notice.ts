// The draining notice: users of a draining cluster see a banner telling them how long they have. The
// banner goes right after the <body> tag of uncompressed HTML; the stream is scanned only until then.
import { Transform, type TransformCallback } from 'node:stream';

/** Bytes scanned for <body at most; past that the banner goes in front of what was seen. */
const SCAN_LIMIT = 64 * 1024;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The banner: `text`, and after it a link when given (the preview's "end preview"). */
export function bannerHtml(text: string, link?: { href: string; text: string }): string {
  const after = link
    ? ` · <a href="${escapeHtml(link.href)}" style="color:inherit;text-decoration:underline">${escapeHtml(link.text)}</a>`
    : '';
  return `<div role="status" style="position:sticky;top:0;z-index:2147483647;padding:8px 12px;background:#fff3cd;color:#664d03;font:14px/1.4 system-ui,sans-serif;border-bottom:1px solid #ffe69c">${escapeHtml(text)}${after}</div>`;
}

/** Whole minutes until the drain's deadline; a drain with none yet (started by the config file) has all of `fullMs`. */
export function minutesLeft(deadline: number | undefined, fullMs: number, now: number): number {
  return Math.max(0, Math.ceil((deadline === undefined ? fullMs : deadline - now) / 60_000));
}

export class BannerInjector extends Transform {
  private seen: Buffer[] = [];
  private seenBytes = 0;
  private done = false;

  constructor(private readonly banner: Buffer) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.done) {
      callback(null, chunk);
      return;
    }
    this.seen.push(chunk);
    this.seenBytes += chunk.length;
    const text = Buffer.concat(this.seen);
    const at = text.indexOf('<body');
    const close = at >= 0 ? text.indexOf('>', at) : -1;
    if (close >= 0) this.release(text, close + 1);
    else if (this.seenBytes >= SCAN_LIMIT) this.release(text, 0);
    else this.seen = [text];
    callback();
  }

  private release(text: Buffer, at: number): void {
    this.done = true;
    this.seen = [];
    this.push(text.subarray(0, at));
    this.push(this.banner);
    this.push(text.subarray(at));
  }

  override _flush(callback: TransformCallback): void {
    if (!this.done) this.release(Buffer.concat(this.seen), 0);
    callback();
  }
}
