// The shadow comparison in Prometheus: copies by result, answers by side and status class (in total and
// per route), latency percentiles by side. Read at scrape time from the report, like every other metric.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ShadowReport, SideFigures } from '../control/shadow.js';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'failed'] as const;
const SIDES = ['live', 'shadow'] as const;
const QUANTILES = [
  ['0.5', 'p50Ms'],
  ['0.9', 'p90Ms'],
  ['0.99', 'p99Ms'],
] as const;

export function registerShadowMetrics(registry: Registry, read: () => ShadowReport | undefined): void {
  // The first one's collect refreshes them all (the registry renders in registration order).
  const copies = new Counter({
    name: 'dayshift_shadow_copies_total',
    help: 'Shadow copies on this instance, by result: sent, dropped (queue full), compared (answered or failed)',
    labelNames: ['cluster', 'result'],
    registers: [registry],
    collect: () => refresh(),
  });
  const responses = new Counter({
    name: 'dayshift_shadow_responses_total',
    help: 'Answers to the compared requests by side (live, shadow) and status class (failed: no answer)',
    labelNames: ['cluster', 'side', 'status_class'],
    registers: [registry],
  });
  const routeResponses = new Counter({
    name: 'dayshift_shadow_route_responses_total',
    help: 'Answers to the compared requests per route, by side and status class',
    labelNames: ['cluster', 'site', 'route', 'side', 'status_class'],
    registers: [registry],
  });
  const latency = new Gauge({
    name: 'dayshift_shadow_latency_seconds',
    help: 'Latency to response headers of the compared requests, by side and quantile (from a histogram)',
    labelNames: ['cluster', 'side', 'quantile'],
    registers: [registry],
  });
  const active = new Gauge({
    name: 'dayshift_shadow_active',
    help: 'Whether the shadow copies now (1) or has ended (0)',
    labelNames: ['cluster'],
    registers: [registry],
  });

  const refresh = () => {
    for (const m of [copies, responses, routeResponses, latency, active]) m.reset();
    const r = read();
    if (!r) return;
    const cluster = r.cluster;
    active.set({ cluster }, r.active ? 1 : 0);
    copies.inc({ cluster, result: 'sent' }, r.copies.sent);
    copies.inc({ cluster, result: 'dropped' }, r.copies.dropped);
    copies.inc({ cluster, result: 'compared' }, r.copies.compared);
    const sides = (
      figures: Record<(typeof SIDES)[number], SideFigures>,
      count: (side: string, cls: string, n: number) => void,
    ) => {
      for (const side of SIDES) for (const cls of CLASSES) count(side, cls, figures[side].classes[cls]);
    };
    sides(r, (side, status_class, n) => responses.inc({ cluster, side, status_class }, n));
    for (const route of r.routes)
      sides(route, (side, status_class, n) =>
        routeResponses.inc({ cluster, site: route.site, route: route.route, side, status_class }, n),
      );
    for (const side of SIDES)
      for (const [quantile, key] of QUANTILES) {
        const ms = r[side][key];
        if (ms !== undefined) latency.set({ cluster, side, quantile }, ms / 1000);
      }
  };
}
