// One set of figures from every worker's: counters and gauges summed, latency histograms added bucket by
// bucket (so percentiles are read from the merged histogram, never averaged), health the worst any
// worker has (they all hold the main's checks; a passive ejection is one worker's own).
import type { Health } from '../model.js';
import type { MemberStats, ProxyStats, SiteStats } from '../proxy/handle.js';

const SEVERITY: Record<Health, number> = { up: 0, unknown: 1, down: 2 };

const addInto = (into: number[], from: readonly number[]) => {
  for (let i = 0; i < from.length; i++) into[i] = (into[i] ?? 0) + from[i]!;
};

/**
 * Merges live workers' figures. `retired` holds the counters of workers that died (their last figures),
 * so that totals never go backwards when a worker is replaced; it adds only to members still configured.
 */
export function mergeStats(live: ProxyStats[], retired: ProxyStats | undefined): ProxyStats {
  const members = new Map<string, MemberStats>();
  const sites = new Map<string, SiteStats>();
  for (const stats of live) {
    for (const m of stats.members) {
      const into = members.get(m.key);
      if (!into) {
        members.set(m.key, {
          ...m,
          responses: [...m.responses],
          latencyBuckets: [...m.latencyBuckets],
        });
        continue;
      }
      into.inFlight += m.inFlight;
      into.openTunnels += m.openTunnels;
      into.failures += m.failures;
      into.latencySumMs += m.latencySumMs;
      addInto(into.responses, m.responses);
      addInto(into.latencyBuckets, m.latencyBuckets);
      if (SEVERITY[m.health] > SEVERITY[into.health]) {
        into.health = m.health;
        if (m.healthReason !== undefined) into.healthReason = m.healthReason;
      }
    }
    for (const s of stats.sites) {
      const into = sites.get(s.name);
      if (into) addInto(into.responses, s.responses);
      else sites.set(s.name, { name: s.name, responses: [...s.responses] });
    }
  }
  if (retired) {
    for (const m of retired.members) {
      const into = members.get(m.key);
      if (!into) continue;
      into.failures += m.failures;
      into.latencySumMs += m.latencySumMs;
      addInto(into.responses, m.responses);
      addInto(into.latencyBuckets, m.latencyBuckets);
    }
    for (const s of retired.sites) {
      const into = sites.get(s.name);
      if (into) addInto(into.responses, s.responses);
    }
  }
  return { members: [...members.values()], sites: [...sites.values()] };
}

/** Adds a dead worker's counters (not its gauges: its requests and tunnels are gone) to the retired ones. */
export function retire(retired: ProxyStats | undefined, last: ProxyStats): ProxyStats {
  const counters = (stats: ProxyStats): ProxyStats => ({
    members: stats.members.map((m) => ({ ...m, inFlight: 0, openTunnels: 0 })),
    sites: stats.sites,
  });
  return mergeStats(retired ? [retired, counters(last)] : [counters(last)], undefined);
}
