// Shadow traffic as the control plane sees it: which cluster may be shadowed, the comparison of live and
// shadow answers (status classes, latency percentiles, per route) made from the proxy's counters, and the
// thresholds a release's shadow step judges it by. The copier itself is src/proxy/shadow.ts; its admin API
// is src/admin/shadow-routes.ts.
import { routeTraffic, type DayshiftConfig } from '../config/schema.js';
import type { ShadowStepConfig } from '../config/release-schema.js';
import type { DesiredState, ShadowDesired } from '../model.js';
import type { ShadowStats, SideCounts } from '../proxy/shadow.js';
import { percentile } from '../observe/sampler.js';
import { RefusedError, ShadowError } from './errors.js';

/** What a shadow is asked with (API body, `dayshift shadow`, a release's shadow step). */
export interface ShadowRequest {
  cluster: string;
  percent: number;
  /** How long it lasts (default shadow.for). */
  forMs?: number;
  /** Methods copied (default shadow.methods). */
  methods?: string[];
}

/** The longest shadow: copies are for a release's look at real traffic, not a standing second load. */
export const MAX_SHADOW_MS = 24 * 3600_000;

/** Checks a shadow request against the config and the traffic state; throws why it cannot run. */
export function checkShadow(config: DayshiftConfig, state: DesiredState, request: ShadowRequest): void {
  const { cluster, percent } = request;
  if (!Object.hasOwn(config.clusters, cluster))
    throw new ShadowError(`unknown cluster "${cluster}"; clusters: ${Object.keys(config.clusters).join(', ')}`);
  if (!(percent > 0 && percent <= 100))
    throw new ShadowError(`the share copied is a percent above 0 and at most 100; asked for ${percent}`);
  if (request.forMs !== undefined && (request.forMs <= 0 || request.forMs > MAX_SHADOW_MS))
    throw new ShadowError(`a shadow lasts more than 0 and at most 24h; asked for ${Math.round(request.forMs / 1000)}s`);
  const unreachable = noSharedRoute(config, cluster);
  if (unreachable) throw new ShadowError(unreachable);
  const traffic = state.clusters[cluster]?.traffic;
  if (traffic !== 'out')
    throw new RefusedError(
      `${cluster} is ${traffic}: copies go to a cluster out of traffic (the idle one); take it out first (dayshift out ${cluster})`,
    );
  const running = state.shadow;
  if (running && running.cluster !== cluster && Date.parse(running.until) > Date.now())
    throw new RefusedError(
      `a shadow to ${running.cluster} runs until ${running.until}: stop it first (dayshift shadow ${running.cluster} --stop)`,
    );
}

/** Why no request could ever be copied to `cluster`: no shared route balances over it; else undefined. */
export function noSharedRoute(config: DayshiftConfig, cluster: string): string | undefined {
  const shared = Object.values(config.sites).some((site) =>
    site.routes.some((r) => r.clusters.includes(cluster) && routeTraffic(r) === 'shared'),
  );
  return shared
    ? undefined
    : `no site has a shared route over ${cluster}: shadow copies are of the public requests other clusters answer`;
}

/** One side's figures: how many requests, by status class, the 5xx rate and latency percentiles. */
export interface SideFigures {
  requests: number;
  /** By status class; `failed`: no answer (connect error, timeout, reset, no usable member). */
  classes: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number; failed: number };
  /** Share of 5xx answers and failed exchanges, 0..1. */
  rate5xx: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
}

export interface RouteComparison {
  site: string;
  route: string;
  live: SideFigures;
  shadow: SideFigures;
  /** Requests whose answers fell in another status class on each side, as far as the totals tell. */
  differences: string[];
}

/** A shadow as `dayshift shadow`, status, the dashboard and the release step show it. */
export interface ShadowReport {
  cluster: string;
  percent: number;
  methods: string[];
  started: string;
  until: string;
  who: string;
  from: string;
  /** Still copying (not stopped, not past `until`). */
  active: boolean;
  /** This instance's copies: sent, dropped (queue full), compared (answered or failed), in flight, queued. */
  copies: { sent: number; dropped: number; compared: number; inFlight: number; queued: number };
  live: SideFigures;
  shadow: SideFigures;
  routes: RouteComparison[];
}

const CLASS_NAMES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export function sideFigures(side: SideCounts): SideFigures {
  const [c1, c2, c3, c4, c5] = side.responses;
  const requests = side.responses.reduce((a, b) => a + b, 0) + side.failures;
  const p = (q: number) => percentile(side.latencyBuckets, q);
  const p50 = p(0.5);
  const p90 = p(0.9);
  const p99 = p(0.99);
  return {
    requests,
    classes: { '1xx': c1, '2xx': c2, '3xx': c3, '4xx': c4, '5xx': c5, failed: side.failures },
    rate5xx: requests > 0 ? (c5 + side.failures) / requests : 0,
    ...(p50 !== undefined ? { p50Ms: p50 } : {}),
    ...(p90 !== undefined ? { p90Ms: p90 } : {}),
    ...(p99 !== undefined ? { p99Ms: p99 } : {}),
  };
}

/** "2xx 40 → 0, 5xx 0 → 40": the status classes whose counts differ between live and shadow. */
export function classDifferences(live: SideFigures, shadow: SideFigures): string[] {
  const names = [...CLASS_NAMES, 'failed'] as const;
  return names
    .filter((name) => live.classes[name] !== shadow.classes[name])
    .map((name) => `${name} ${live.classes[name]} → ${shadow.classes[name]}`);
}

/**
 * The report of the shadow in force (or the last one, while the proxy still has its figures): the desired
 * state says what was asked, this instance's copier what it saw. Undefined when there is neither.
 */
export function shadowReport(
  desired: ShadowDesired | undefined,
  stats: ShadowStats | undefined,
  now: number,
): ShadowReport | undefined {
  if (!desired) return undefined;
  const own = stats && stats.started === desired.started && stats.cluster === desired.cluster ? stats : undefined;
  const empty: SideCounts = { responses: [0, 0, 0, 0, 0], failures: 0, latencyBuckets: [] };
  const live = sideFigures(own?.live ?? empty);
  const shadow = sideFigures(own?.shadow ?? empty);
  return {
    ...desired,
    active: Date.parse(desired.until) > now,
    copies: {
      sent: own?.sent ?? 0,
      dropped: own?.dropped ?? 0,
      compared: own?.compared ?? 0,
      inFlight: own?.inFlight ?? 0,
      queued: own?.queued ?? 0,
    },
    live,
    shadow,
    routes: (own?.routes ?? [])
      .map((r) => {
        const l = sideFigures(r.live);
        const s = sideFigures(r.shadow);
        return { site: r.site, route: r.route, live: l, shadow: s, differences: classDifferences(l, s) };
      })
      .sort((a, b) => a.site.localeCompare(b.site) || a.route.localeCompare(b.route)),
  };
}

/** What the shadow step judges: its thresholds. */
export type ShadowThresholds = Pick<ShadowStepConfig, 'min_samples' | 'max_5xx_increase' | 'max_p99_ratio' | 'min_p99'>;

/** Why a shadow's comparison fails the thresholds, or undefined when it passes. */
export function judgeShadow(report: ShadowReport, t: ShadowThresholds): string | undefined {
  const { live, shadow } = report;
  if (shadow.requests < t.min_samples)
    return `only ${shadow.requests} request(s) compared, fewer than min_samples ${t.min_samples}: too little traffic to judge (raise percent or for)`;
  const allowed = live.rate5xx + t.max_5xx_increase;
  if (shadow.rate5xx > allowed + 1e-12)
    return `shadow 5xx rate ${pct(shadow.rate5xx)} is above live's ${pct(live.rate5xx)} + ${pct(t.max_5xx_increase)} (max_5xx_increase)`;
  if (shadow.p99Ms !== undefined && shadow.p99Ms > t.min_p99 && live.p99Ms !== undefined) {
    const ratio = shadow.p99Ms / Math.max(live.p99Ms, 1);
    if (ratio > t.max_p99_ratio)
      return `shadow p99 ${Math.round(shadow.p99Ms)}ms is ${ratio.toFixed(2)}× live's ${Math.round(live.p99Ms)}ms (max_p99_ratio ${t.max_p99_ratio})`;
  }
  return undefined;
}

export function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(2).replace(/\.?0+$/, '')}%`;
}
