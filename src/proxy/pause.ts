// Pause (`dayshift pause`): new requests on a paused site wait here instead of going to a member. They
// go on when the pause is lifted or runs out (routed again on the snapshot then in force), or get a 503
// when it runs out with `then: reject`. The control plane sets pauses as desired state; the snapshot
// carries them (SiteSnapshot.pause); this file is the rest.
import type { SiteSnapshot, Snapshot } from './snapshot.js';

/** Whether new requests on the site are held at `now`. */
export function isPaused(
  site: SiteSnapshot,
  now: number,
): site is SiteSnapshot & { pause: NonNullable<SiteSnapshot['pause']> } {
  return site.pause !== undefined && site.pause.until > now;
}

/** Requests a paused proxy holds at most; more are answered 503 at once rather than queued without limit. */
export const MAX_HELD = 10_000;

/** What becomes of a held request: it goes on, or it gets a 503. */
export type HeldOutcome = 'resume' | 'reject';

/**
 * The requests held by paused sites, in arrival order. One timer, armed for the earliest pause end,
 * looks them over; so does every new snapshot (a pause lifted or changed).
 */
export class HeldRequests<T> {
  private held: { site: string; item: T }[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires next (Infinity: not armed). */
  private timerAt = Infinity;

  constructor(
    private readonly snapshot: () => Snapshot,
    private readonly settle: (item: T, outcome: HeldOutcome) => void,
  ) {}

  /** Holds `item` while `site` is paused (until `until` at the latest); past MAX_HELD, rejects it at once. */
  hold(site: string, until: number, item: T): void {
    if (this.held.length >= MAX_HELD) return this.settle(item, 'reject');
    this.held.push({ site, item });
    this.arm(until);
  }

  /** Lets go of the requests whose site is no longer paused in the snapshot in force. */
  review(): void {
    this.disarm();
    if (this.held.length === 0) return;
    const now = Date.now();
    const sites = sitesByName(this.snapshot());
    let next = Infinity;
    const waiting: { site: string; item: T }[] = [];
    for (const h of this.held.splice(0)) {
      const pause = sites.get(h.site)?.pause;
      if (pause && pause.until > now) {
        next = Math.min(next, pause.until);
        waiting.push(h);
      } else this.settle(h.item, pause && pause.then === 'reject' ? 'reject' : 'resume');
    }
    this.held.push(...waiting);
    if (next !== Infinity) this.arm(next);
  }

  /** Shutting down: every held request gets its 503. */
  rejectAll(): void {
    this.disarm();
    for (const h of this.held.splice(0)) this.settle(h.item, 'reject');
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.review(), Math.max(1, at - Date.now()));
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}

function sitesByName(snapshot: Snapshot): Map<string, SiteSnapshot> {
  const sites = new Map<string, SiteSnapshot>();
  for (const site of [
    ...snapshot.exact.values(),
    ...snapshot.wildcard.values(),
    ...(snapshot.fallback ? [snapshot.fallback] : []),
  ])
    sites.set(site.name, site);
  return sites;
}
