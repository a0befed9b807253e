// When each member last took a new request, from a load balancer's own cumulative counter (Apache's
// `elected`, HAProxy's `stot`). Apache and HAProxy cannot count sessions, but a draining member whose
// counter stays still for the session idle window takes no more sticky requests: that is drained.
export class RequestCounts {
  private readonly seen = new Map<string, { count: number; changedAt: number }>();

  /**
   * Records a reading; returns the milliseconds since the count last changed. A member seen for the first
   * time (or whose counter was reset by a restart) counts as just used: the quiet time starts now.
   */
  observe(key: string, count: number, now = Date.now()): number {
    const last = this.seen.get(key);
    if (last?.count !== count) {
      this.seen.set(key, { count, changedAt: now });
      return 0;
    }
    return now - last.changedAt;
  }
}
