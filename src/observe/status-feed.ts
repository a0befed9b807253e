// The `status` events of /api/events: one report per tick, shared by every connected client. A report
// scans the whole session map (milliseconds with 200,000 sessions), so building one per client per
// second would cost N scans a second for N dashboards and `status --watch` views.

/** One connected client. */
export interface FeedClient<T> {
  send(report: T): void;
  /** True while the client has not read what it was sent: it skips reports until it has caught up. */
  blocked(): boolean;
}

/** Runs `tick` every `intervalMs` until the returned function is called. */
export type Ticker = (tick: () => void, intervalMs: number) => () => void;

const intervalTicker: Ticker = (tick, intervalMs) => {
  const timer = setInterval(tick, intervalMs);
  return () => clearInterval(timer);
};

export interface StatusFeedOptions<T> {
  build: () => Promise<T>;
  /** Calls the listener whenever the state changes; returns how to stop. */
  watch: (listener: () => void) => () => void;
  intervalMs: number;
  ticker?: Ticker;
}

export class StatusFeed<T> {
  private readonly clients = new Set<FeedClient<T>>();
  private stop: (() => void) | undefined;
  private building = false;
  /** A change came while a report was being built: that report may predate it, so build another. */
  private stale = false;
  private started = 0;

  constructor(private readonly options: StatusFeedOptions<T>) {}

  /** Reports started since this feed was created (whether or not they succeeded). */
  get builds(): number {
    return this.started;
  }

  /** Whether the timer runs, that is, whether any client is connected. */
  get running(): boolean {
    return this.stop !== undefined;
  }

  /** Adds a client, which gets a report at once and then one per tick and per change. */
  join(client: FeedClient<T>): void {
    this.clients.add(client);
    if (!this.stop) {
      const stopTicks = (this.options.ticker ?? intervalTicker)(() => this.refresh(false), this.options.intervalMs);
      const unwatch = this.options.watch(() => this.refresh(true));
      this.stop = () => {
        stopTicks();
        unwatch();
      };
    }
    // A report already being built reaches the new client too: it started moments ago.
    this.refresh(false);
  }

  leave(client: FeedClient<T>): void {
    this.clients.delete(client);
    if (this.clients.size > 0 || !this.stop) return;
    this.stop();
    this.stop = undefined;
  }

  private refresh(changed: boolean): void {
    if (this.clients.size === 0) return;
    if (this.building) {
      // A tick during a build is dropped, so a slow driver is not asked again the moment it answers.
      if (changed) this.stale = true;
      return;
    }
    void this.run();
  }

  private async run(): Promise<void> {
    this.building = true;
    try {
      do {
        this.stale = false;
        this.started++;
        let report: T;
        try {
          report = await this.options.build();
        } catch {
          // The driver could not say (an external load balancer out of reach): the next tick tries again.
          continue;
        }
        for (const client of this.clients) if (!client.blocked()) client.send(report);
      } while (this.stale && this.clients.size > 0);
    } finally {
      this.building = false;
    }
  }
}
