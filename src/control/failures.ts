// Slows down token guessing: an address that failed too often within a window is refused before its
// next guess is even compared. Memory is bounded: past MAX_TRACKED addresses the oldest is forgotten.

const MAX_TRACKED = 10_000;

export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly maxFailures: number, private readonly windowMs: number, private readonly now: () => number = Date.now) {}

  /** Seconds `from` must wait before its next attempt, or undefined when it may try now. */
  retryAfter(from: string): number | undefined {
    const now = this.now();
    const recent = (this.failures.get(from) ?? []).filter((at) => now - at < this.windowMs);
    if (recent.length < this.maxFailures) return undefined;
    return Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000));
  }

  failed(from: string): void {
    const now = this.now();
    const recent = (this.failures.get(from) ?? []).filter((at) => now - at < this.windowMs);
    recent.push(now);
    this.failures.delete(from);
    if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(from, recent);
  }

  succeeded(from: string): void {
    this.failures.delete(from);
  }

  /** Forgets addresses whose failures are all older than the window. */
  prune(): void {
    const now = this.now();
    for (const [from, times] of this.failures) if (times.every((at) => now - at >= this.windowMs)) this.failures.delete(from);
  }
}
