// Slows down token guessing: an address that failed too often within a window gets its wrong guesses
// refused (429) until the window passes. Only failures are throttled: the right token always works, so
// a stranger on the operator's address (a shared NAT, a proxy) cannot lock the operator out. Memory is
// bounded: past MAX_TRACKED addresses the oldest is forgotten.

const MAX_TRACKED = 10_000;

/** A wrong token: refused for a while (over the limit), or counted. */
export type WrongToken = { retryAfter: number } | { failures: number; throttled: boolean };

export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds `from` must wait before its next attempt, or undefined when it may try now. */
  retryAfter(from: string): number | undefined {
    const now = this.now();
    const recent = (this.failures.get(from) ?? []).filter((at) => now - at < this.windowMs);
    if (recent.length < this.maxFailures) return undefined;
    return Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000));
  }

  /** Records a failure; returns the failures of `from` within the window, this one included. */
  failed(from: string): number {
    const now = this.now();
    const recent = (this.failures.get(from) ?? []).filter((at) => now - at < this.windowMs);
    recent.push(now);
    this.failures.delete(from);
    if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(from, recent);
    return recent.length;
  }

  /**
   * A wrong token from `from`: refused for `retryAfter` seconds when the address is over its limit (not
   * counted again, so the window runs out), else counted (`failures`, `throttled` once at the limit).
   */
  wrong(from: string): WrongToken {
    const retryAfter = this.retryAfter(from);
    if (retryAfter !== undefined) return { retryAfter };
    const failures = this.failed(from);
    return { failures, throttled: failures >= this.maxFailures };
  }

  /** Forgets addresses whose failures are all older than the window. */
  prune(): void {
    const now = this.now();
    for (const [from, times] of this.failures)
      if (times.every((at) => now - at >= this.windowMs)) this.failures.delete(from);
  }
}
