// Samples the proxy's counters once a second into rates, percentiles and a few minutes of history per
// cluster: what `status`, the dashboard's charts and canary analysis read. Off the hot path entirely.
import { LATENCY_BUCKETS_MS, type MemberStats, type ProxyStats } from '../proxy/handle.js';
import type { MemberKey } from '../model.js';

export interface Rates {
  requestsPerSecond: number;
  errorsPerSecond: number;
  /** Share of responses that were 5xx or failed exchanges, 0..1. */
  errorRate: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
}

export interface HistoryPoint extends Rates {
  /** Epoch ms. */
  at: number;
}

interface Sample {
  at: number;
  members: Map<MemberKey, MemberStats>;
}

/** Seconds of samples kept: enough for five minutes of charts. */
const KEEP = 300;

export class StatsSampler {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly read: () => ProxyStats,
    private readonly clusterOf: (member: MemberKey) => string | undefined,
  ) {}

  start(intervalMs = 1000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sample(now = Date.now()): void {
    const members = new Map<MemberKey, MemberStats>();
    for (const m of this.read().members) members.set(m.key, structuredClone(m));
    this.samples.push({ at: now, members });
    if (this.samples.length > KEEP + 1) this.samples.shift();
  }

  /** Rates of one member, or of several summed, over the last `windowSeconds`. */
  rates(members: MemberKey[], windowSeconds = 10): Rates {
    const last = this.samples.at(-1);
    const first = this.samples[Math.max(0, this.samples.length - 1 - windowSeconds)];
    if (!last || !first || last === first)
      return { requestsPerSecond: 0, errorsPerSecond: 0, errorRate: 0, p50Ms: undefined, p99Ms: undefined };
    return between(first, last, members);
  }

  /** One point per sample for the members of a cluster (the dashboard's charts). */
  history(cluster: string, points = KEEP): HistoryPoint[] {
    const result: HistoryPoint[] = [];
    const start = Math.max(1, this.samples.length - points);
    for (let i = start; i < this.samples.length; i++) {
      const before = this.samples[i - 1]!;
      const after = this.samples[i]!;
      const members = [...after.members.keys()].filter((k) => this.clusterOf(k) === cluster);
      result.push({ at: after.at, ...between(before, after, members) });
    }
    return result;
  }
}

function between(first: Sample, last: Sample, members: MemberKey[]): Rates {
  const seconds = Math.max(0.001, (last.at - first.at) / 1000);
  let responses = 0;
  let errors = 0;
  const buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const key of members) {
    const a = first.members.get(key);
    const b = last.members.get(key);
    if (!b) continue;
    const total = (s: MemberStats | undefined) => (s ? s.responses.reduce((x, y) => x + y, 0) + s.failures : 0);
    const bad = (s: MemberStats | undefined) => (s ? s.responses[4] + s.failures : 0);
    responses += total(b) - total(a);
    errors += bad(b) - bad(a);
    b.latencyBuckets.forEach((count, i) => (buckets[i]! += count - (a?.latencyBuckets[i] ?? 0)));
  }
  return {
    requestsPerSecond: responses / seconds,
    errorsPerSecond: errors / seconds,
    errorRate: responses > 0 ? errors / responses : 0,
    p50Ms: percentile(buckets, 0.5),
    p99Ms: percentile(buckets, 0.99),
  };
}

/** Percentile from bucket counts, interpolated linearly within the bucket. */
export function percentile(buckets: number[], q: number): number | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i]!;
    if (count > 0 && seen + count >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]!;
      const upper = LATENCY_BUCKETS_MS[i] ?? lower * 2;
      return lower + ((rank - seen) / count) * (upper - lower);
    }
    seen += count;
  }
  return LATENCY_BUCKETS_MS.at(-1);
}
