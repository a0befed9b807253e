// Prometheus metrics. Everything is read at scrape time from the proxy's plain counters and the
// driver's status, so the hot path never touches prom-client.
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import { ADMIN_STATES, TRAFFIC_STATES } from '../model.js';
import { LATENCY_BUCKETS_MS, type ProxyHandle } from '../proxy/handle.js';
import { DELIVERY_RESULTS, type WebhookSender } from '../release/webhooks.js';
import type { AdminServer } from '../admin/server.js';
import type { ControlPlane } from '../control/plane.js';
import type { SessionTracker } from '../control/session-tracker.js';
import type { CertificateReport } from '../tls/certificates.js';
import type { WorkerStatus } from '../workers/pool.js';
import { registerShadowMetrics } from './shadow-metrics.js';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Figures kept outside the plane and the proxy: release notifications, ACME certificates, worker processes. */
export interface MetricSources {
  webhooks?: Pick<WebhookSender, 'counts' | 'retries'>;
  certificates?: () => CertificateReport[];
  workers?: () => WorkerStatus[];
}

export function createMetrics(
  plane: ControlPlane,
  proxy?: ProxyHandle,
  sessions?: SessionTracker,
  { webhooks, certificates, workers }: MetricSources = {},
): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'dayshift_process_' });

  const reloads = new Counter({
    name: 'dayshift_reloads_total',
    help: 'Configuration reloads applied',
    registers: [registry],
  });
  const changes = new Counter({
    name: 'dayshift_state_changes_total',
    help: 'Runtime state changes applied',
    registers: [registry],
  });
  plane.on('reload', () => reloads.inc());
  plane.on('change', () => changes.inc());

  if (proxy) {
    // The registry renders metrics in registration order: the first one's collect refreshes them all.
    const siteRequests = new Counter({
      name: 'dayshift_requests_total',
      help: 'Responses sent to clients, by site and status class',
      labelNames: ['site', 'status_class'],
      registers: [registry],
      collect: () => mirror(),
    });
    const memberResponses = new Counter({
      name: 'dayshift_member_responses_total',
      help: 'Responses from members, by status class',
      labelNames: ['cluster', 'member', 'status_class'],
      registers: [registry],
    });
    const failures = new Counter({
      name: 'dayshift_member_failures_total',
      help: 'Exchanges with a member that failed (connect error, timeout, reset)',
      labelNames: ['cluster', 'member'],
      registers: [registry],
    });
    const inFlight = new Gauge({
      name: 'dayshift_member_in_flight',
      help: 'Requests in flight to the member',
      labelNames: ['cluster', 'member'],
      registers: [registry],
    });
    const tunnels = new Gauge({
      name: 'dayshift_member_open_tunnels',
      help: 'Open WebSocket/upgrade tunnels to the member',
      labelNames: ['cluster', 'member'],
      registers: [registry],
    });
    const health = new Gauge({
      name: 'dayshift_member_up',
      help: 'Member health as checks see it (1 up, 0 down or unknown)',
      labelNames: ['cluster', 'member'],
      registers: [registry],
    });
    // Counters mirror totals the proxy keeps: reset and re-add at scrape time.
    const mirror = () => {
      const stats = proxy.stats();
      siteRequests.reset();
      memberResponses.reset();
      failures.reset();
      for (const site of stats.sites)
        site.responses.forEach((n, i) => n > 0 && siteRequests.inc({ site: site.name, status_class: CLASSES[i]! }, n));
      for (const m of stats.members) {
        const labels = { cluster: m.cluster, member: m.id };
        m.responses.forEach((n, i) => n > 0 && memberResponses.inc({ ...labels, status_class: CLASSES[i]! }, n));
        if (m.failures > 0) failures.inc(labels, m.failures);
        inFlight.set(labels, m.inFlight);
        tunnels.set(labels, m.openTunnels);
        health.set(labels, m.health === 'up' ? 1 : 0);
      }
    };
    registry.registerMetric(latencyHistogram(proxy));
    registerShadowMetrics(registry, () => plane.shadowReport());
  }

  if (sessions) {
    new Gauge({
      name: 'dayshift_sessions_tracked',
      help: 'Sessions tracked for session-aware drain',
      registers: [registry],
      collect() {
        this.set(sessions.size);
      },
    });
    new Gauge({
      name: 'dayshift_sessions_evicted',
      help: 'Sessions evicted from tracking because the bound was reached',
      registers: [registry],
      collect() {
        this.set(sessions.evictions);
      },
    });
  }

  if (webhooks) {
    new Counter({
      name: 'dayshift_notifications_total',
      help: 'Release notifications by outcome: sent, failed (after the retries) or dropped (queue full, or Dayshift stopping)',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        for (const result of DELIVERY_RESULTS) this.inc({ result }, webhooks.counts[result]);
      },
    });
    new Counter({
      name: 'dayshift_notification_retries_total',
      help: 'Release notification attempts after a failed one',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(webhooks.retries);
      },
    });
  }
  if (certificates) {
    new Gauge({
      name: 'dayshift_certificate_expiry_seconds',
      help: 'Unix time at which the ACME certificate in force for the host expires',
      labelNames: ['site', 'host'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of certificates())
          if (c.notAfter) for (const host of c.hosts) this.set({ site: c.site, host }, Date.parse(c.notAfter) / 1000);
      },
    });
  }
  if (workers) {
    new Counter({
      name: 'dayshift_worker_restarts_total',
      help: 'Worker processes replaced after they exited, by worker number',
      labelNames: ['worker'],
      registers: [registry],
      collect() {
        this.reset();
        // Every worker has its series from the start, at 0, so that increase() sees its first restart.
        for (const w of workers()) this.inc({ worker: String(w.worker) }, w.restarts);
      },
    });
    new Gauge({
      name: 'dayshift_workers_serving',
      help: 'Worker processes serving the proxy listeners now',
      registers: [registry],
      collect() {
        this.set(workers().filter((w) => w.state === 'serving').length);
      },
    });
  }

  const bound = new Gauge({
    name: 'dayshift_member_bound_sessions',
    help: 'Sessions bound to the member seen within the idle window',
    labelNames: ['cluster', 'member'],
    registers: [registry],
    collect: () => refreshState(),
  });
  const adminState = new Gauge({
    name: 'dayshift_member_admin_state',
    help: 'Member admin state (1 for the current one)',
    labelNames: ['cluster', 'member', 'state'],
    registers: [registry],
  });
  const traffic = new Gauge({
    name: 'dayshift_cluster_traffic_state',
    help: 'Cluster traffic state (1 for the current one)',
    labelNames: ['cluster', 'state'],
    registers: [registry],
  });
  const weight = new Gauge({
    name: 'dayshift_cluster_weight',
    help: 'Cluster weight among live clusters',
    labelNames: ['cluster'],
    registers: [registry],
  });
  const drainLeft = new Gauge({
    name: 'dayshift_drain_remaining_seconds',
    help: 'Seconds left until the drain deadline of a draining cluster',
    labelNames: ['cluster'],
    registers: [registry],
  });
  const drainBusy = new Gauge({
    name: 'dayshift_drain_pending',
    help: 'What a draining cluster still waits for',
    labelNames: ['cluster', 'what'],
    registers: [registry],
  });
  // Read by the first state gauge's collect, before any of them is rendered.
  const refreshState = async () => {
    const status = await plane.status();
    for (const g of [bound, adminState, traffic, weight, drainLeft, drainBusy]) g.reset();
    for (const cluster of status.clusters) {
      for (const s of TRAFFIC_STATES) traffic.set({ cluster: cluster.name, state: s }, cluster.traffic === s ? 1 : 0);
      weight.set({ cluster: cluster.name }, cluster.weight);
      for (const m of cluster.members) {
        // Apache and HAProxy count no sessions: no series rather than a made-up 0.
        if (m.boundSessions !== undefined) bound.set({ cluster: cluster.name, member: m.id }, m.boundSessions);
        for (const s of ADMIN_STATES)
          adminState.set({ cluster: cluster.name, member: m.id, state: s }, m.admin === s ? 1 : 0);
      }
      if (cluster.traffic === 'draining') {
        const p = await plane.drainProgress({ kind: 'cluster', cluster: cluster.name }, { status });
        drainLeft.set({ cluster: cluster.name }, (p.remainingMs ?? 0) / 1000);
        drainBusy.set({ cluster: cluster.name, what: 'in_flight' }, p.inFlight);
        if (p.sessions !== undefined) drainBusy.set({ cluster: cluster.name, what: 'sessions' }, p.sessions);
        drainBusy.set({ cluster: cluster.name, what: 'tunnels' }, p.tunnels);
      }
    }
  };
  return registry;
}

interface SampleValue {
  metricName: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The proxy's latency buckets exposed as a Prometheus histogram, without re-observing anything.
 * prom-client's registry reads any object with name, help, type and get(); its typings only know its own
 * classes, hence the cast.
 */
function latencyHistogram(proxy: ProxyHandle): Metric {
  const help = 'Time from request sent to response headers from the member';
  const metric = {
    name: 'dayshift_member_latency_seconds',
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: SampleValue[] = [];
      for (const m of proxy.stats().members) {
        const labels = { cluster: m.cluster, member: m.id };
        let cumulative = 0;
        LATENCY_BUCKETS_MS.forEach((bound, i) => {
          cumulative += m.latencyBuckets[i] ?? 0;
          values.push({
            metricName: 'dayshift_member_latency_seconds_bucket',
            labels: { ...labels, le: String(bound / 1000) },
            value: cumulative,
          });
        });
        cumulative += m.latencyBuckets[LATENCY_BUCKETS_MS.length] ?? 0;
        values.push({
          metricName: 'dayshift_member_latency_seconds_bucket',
          labels: { ...labels, le: '+Inf' },
          value: cumulative,
        });
        values.push({ metricName: 'dayshift_member_latency_seconds_sum', labels, value: m.latencySumMs / 1000 });
        values.push({ metricName: 'dayshift_member_latency_seconds_count', labels, value: cumulative });
      }
      return { name: metric.name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  return metric as unknown as Metric;
}

/** `refresh`: with workers, gathers their figures first, so that a scrape counts every request until now. */
export function registerMetricsRoute(
  server: AdminServer,
  registry: Registry,
  requireAuth: boolean,
  refresh?: () => Promise<void>,
): void {
  server.router.add(
    { method: 'GET', path: '/metrics', summary: 'Prometheus metrics', auth: requireAuth, tag: 'meta' },
    async ({ res }) => {
      await refresh?.();
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(body);
      return undefined;
    },
  );
}
