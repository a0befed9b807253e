// A member's live counters: in flight, latency EWMA, health, passive ejection, response counters and a
// latency histogram. They live across snapshots (keyed by member key) so that apply() never resets them.
import type { Duplex } from 'node:stream';
import type { MemberConfig } from '../config/schema.js';
import type { Health, MemberKey } from '../model.js';
import { LATENCY_BUCKETS_MS, statusClass, type MemberStats, type StatusClassCounts } from '../proxy/handle.js';
import type { Transport } from '../proxy/member-transport.js';

/** Weight of the newest sample in the latency EWMA. */
const EWMA_ALPHA = 0.3;

export interface PassivePolicy {
  failures: number;
  ejectionMs: number;
  maxEjectionMs: number;
}

export class MemberRuntime {
  readonly url: URL;
  /** What the member calls itself in Location headers (ajp:// members answer with http:// URLs). */
  readonly origin: string;
  inFlight = 0;
  ewmaMs = 0;
  /** Health from active checks; `unknown` until the first check (served optimistically meanwhile). */
  health: Health = 'unknown';
  healthReason: string | undefined;
  private consecutiveFailures = 0;
  private ejections = 0;
  ejectedUntil = 0;
  readonly responses: StatusClassCounts = [0, 0, 0, 0, 0];
  failures = 0;
  private readonly latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  private latencySum = 0;
  /** Open tunnels: the client's socket (HTTP/1.1), or its stream (WebSocket over HTTP/2). */
  readonly tunnels = new Set<Duplex>();

  constructor(
    readonly key: MemberKey,
    readonly cluster: string,
    readonly id: string,
    /** The member's config; replaced when apply() brings an equal-URL member with other settings. */
    public config: MemberConfig,
    public transport: Transport,
  ) {
    this.url = new URL(config.url);
    this.origin = this.url.protocol === 'ajp:' ? `http://${this.url.host}` : this.url.origin;
  }

  /** Whether new requests may go here now: not down by checks and not ejected by passive checks. */
  usable(now: number): boolean {
    return this.health !== 'down' && this.ejectedUntil <= now;
  }

  observe(status: number, latencyMs: number): void {
    this.responses[statusClass(status)]!++;
    this.ewmaMs = this.ewmaMs === 0 ? latencyMs : this.ewmaMs + EWMA_ALPHA * (latencyMs - this.ewmaMs);
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && latencyMs > LATENCY_BUCKETS_MS[i]!) i++;
    this.latency[i]!++;
    this.latencySum += latencyMs;
  }

  succeeded(): void {
    this.consecutiveFailures = 0;
    if (this.ejections > 0 && this.ejectedUntil <= Date.now()) {
      this.ejections = 0;
      if (this.healthReason?.startsWith('ejected')) this.healthReason = undefined;
    }
  }

  /** A connect error, timeout or listed status; enough in a row eject the member for a growing time. */
  failed(reason: string, policy: PassivePolicy, now: number): void {
    this.failures++;
    this.consecutiveFailures++;
    if (this.consecutiveFailures < policy.failures) return;
    const ms = Math.min(policy.ejectionMs * 2 ** this.ejections, policy.maxEjectionMs);
    this.ejections++;
    this.consecutiveFailures = 0;
    this.ejectedUntil = now + ms;
    this.healthReason = `ejected for ${ms}ms after ${policy.failures} failures: ${reason}`;
  }

  stats(now: number): MemberStats {
    const ejected = this.ejectedUntil > now;
    return {
      key: this.key,
      cluster: this.cluster,
      id: this.id,
      url: this.config.url,
      health: ejected ? 'down' : this.health,
      ...(this.health === 'down' || ejected ? { healthReason: this.healthReason ?? 'down' } : {}),
      inFlight: this.inFlight,
      responses: [...this.responses],
      failures: this.failures,
      latencyBuckets: [...this.latency],
      latencySumMs: this.latencySum,
      openTunnels: this.tunnels.size,
    };
  }
}
