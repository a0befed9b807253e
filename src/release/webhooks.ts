// Webhook delivery, beside whatever produced the message and never in its way: send() only queues.
// One queue per receiver keeps its messages in order and lets a slow or dead receiver hold up only
// itself. The queues are bounded, every attempt has a time limit, and retries back off within a bounded
// count and time. Nothing here throws to the caller: failures are logged and counted.
import type { Logger } from 'pino';
import { delay } from '../delay.js';

export interface WebhookMessage {
  url: string;
  headers: Record<string, string>;
  /** The JSON document to POST. */
  body: string;
  timeoutMs: number;
  /** Attempts after the first. */
  retries: number;
  /** What the message is about, for the log. */
  about: string;
}

/** `dropped`: never tried to the end, because the queue was full or Dayshift stopped. */
export type DeliveryResult = 'sent' | 'failed' | 'dropped';
export const DELIVERY_RESULTS: readonly DeliveryResult[] = ['sent', 'failed', 'dropped'];

/** Messages waiting per receiver; more are dropped, so a stuck receiver cannot grow without bound. */
const QUEUE_LIMIT = 100;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
/** No retry starts later than this after the message was queued. */
const GIVE_UP_AFTER_MS = 5 * 60_000;

export class WebhookSender {
  readonly counts: Record<DeliveryResult, number> = { sent: 0, failed: 0, dropped: 0 };
  /** Attempts after a first one failed. */
  retries = 0;
  private readonly queues = new Map<string, WebhookMessage[]>();
  private readonly workers = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly logger: Logger) {}

  /** Queues the message; returns at once. */
  send(message: WebhookMessage): void {
    const queue = this.queues.get(message.url);
    if (this.stopping.signal.aborted || (queue?.length ?? 0) >= QUEUE_LIMIT) {
      this.counts.dropped++;
      this.logger.warn(
        { webhook: redact(message.url), about: message.about },
        `webhook ${redact(message.url)}: ${message.about} dropped: ${this.stopping.signal.aborted ? 'Dayshift is stopping' : `${QUEUE_LIMIT} messages already wait for this receiver`}`,
      );
      return;
    }
    if (queue) {
      queue.push(message);
      return;
    }
    this.queues.set(message.url, [message]);
    const worker = this.drain(message.url).finally(() => this.workers.delete(worker));
    this.workers.add(worker);
  }

  /** Lets queued messages go out for up to flushMs, then stops the rest (counted as dropped). */
  async close(flushMs = 2000): Promise<void> {
    const all = Promise.all(this.workers);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, flushMs)))]);
    clearTimeout(timer);
    this.stopping.abort(new Error('Dayshift is stopping'));
    await all;
  }

  private async drain(url: string): Promise<void> {
    const queue = this.queues.get(url)!;
    for (let message = queue.shift(); message; message = queue.shift()) {
      if (this.stopping.signal.aborted) this.counts.dropped++;
      else this.counts[await this.deliver(message)]++;
    }
    this.queues.delete(url);
  }

  private async deliver(message: WebhookMessage): Promise<DeliveryResult> {
    const queuedAt = Date.now();
    for (let attempt = 0; ; attempt++) {
      const problem = await this.attempt(message);
      if (problem === undefined) return 'sent';
      if (this.stopping.signal.aborted) return 'dropped';
      const backoff = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
      const last = !problem.retry || attempt >= message.retries || Date.now() + backoff - queuedAt > GIVE_UP_AFTER_MS;
      const where = redact(message.url);
      if (last) {
        this.logger.warn(
          { webhook: where, about: message.about, attempts: attempt + 1 },
          `webhook ${where}: ${message.about} not delivered after ${attempt + 1} attempt(s): ${problem.what}`,
        );
        return 'failed';
      }
      this.logger.info(
        { webhook: where, about: message.about },
        `webhook ${where}: ${problem.what}; trying again in ${backoff / 1000}s`,
      );
      this.retries++;
      if (
        !(await delay(backoff, this.stopping.signal).then(
          () => true,
          () => false,
        ))
      )
        return 'dropped';
    }
  }

  /** One POST; returns what went wrong and whether another attempt may do better. */
  private async attempt(message: WebhookMessage): Promise<{ what: string; retry: boolean } | undefined> {
    try {
      const response = await fetch(message.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...message.headers },
        body: message.body,
        redirect: 'error',
        signal: AbortSignal.any([AbortSignal.timeout(message.timeoutMs), this.stopping.signal]),
      });
      // The answer's body is of no use; cancelling it frees the connection even if the receiver stalls.
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) return undefined;
      const retry = response.status >= 500 || response.status === 429;
      return {
        what: `the receiver answered ${response.status}${retry ? '' : ': check the webhook URL and headers'}`,
        retry,
      };
    } catch (err) {
      const error = err as Error & { cause?: { code?: string; message?: string } };
      if (error.name === 'TimeoutError') return { what: `no answer within ${message.timeoutMs / 1000}s`, retry: true };
      return { what: error.cause?.code ?? error.cause?.message ?? error.message, retry: true };
    }
  }
}

/** The receiver without its path and query, which often hold the webhook's secret (Slack's do). */
function redact(url: string): string {
  return `${new URL(url).origin}/…`;
}
