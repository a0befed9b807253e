// The status report: one document for `dayshift status`, the dashboard and scripts.
import type { ClusterStatus, MemberStatus } from '../drivers/driver.js';
import { memberKey, type SiteDesired } from '../model.js';
import type { ControlPlane, DrainProgress, DriftRepair } from '../control/plane.js';
import type { Rates, StatsSampler } from './sampler.js';
import { listPreviews, type PreviewReport } from '../control/previews.js';
import type { ShadowReport } from '../control/shadow.js';
import { routeTraffic, type DayshiftConfig } from '../config/schema.js';
import type { CertificateReport } from '../tls/certificates.js';
import type { WorkerStatus } from '../workers/pool.js';

export interface MemberReport extends MemberStatus, Partial<Rates> {
  key: string;
}

export interface ClusterReport extends Omit<ClusterStatus, 'members'>, Partial<Rates> {
  members: MemberReport[];
  drainingSince?: string;
  /** Present while the cluster drains. */
  drain?: DrainProgress;
  /** Where QA reaches this cluster alone. */
  qaUrl?: string;
}

export interface SiteReport extends SiteDesired {
  name: string;
  hosts: string[];
  routes: { path: string; clusters: string[]; balance: string; traffic: 'shared' | 'pinned'; sticky?: string }[];
  /** The certificate of a site on tls.acme: its expiry, or why it has none yet. */
  certificate?: Omit<CertificateReport, 'site'>;
}

export interface StatusReport {
  driver: string;
  store: string;
  config: string;
  at: string;
  sites: SiteReport[];
  clusters: ClusterReport[];
  warnings: string[];
  /** The last time the load balancer had lost Dayshift's state and got it back (also in `warnings`). */
  drift?: DriftRepair;
  /** Previews in force (`dayshift preview`), when there are any. */
  previews?: PreviewReport[];
  /** The shadow in force, or one that ended within the last hour, with this instance's comparison. */
  shadow?: ShadowReport;
  /** With workers (`workers` ≥ 2): this instance's worker processes, by number. */
  workers?: WorkerStatus[];
}

/** What the report reads besides the control plane, when this Dayshift has it. */
export interface StatusSources {
  /** Requests/s, error rates and percentiles (the built-in proxy). */
  sampler?: StatsSampler;
  /** Sites on tls.acme. */
  certificates?: () => CertificateReport[];
  /** The worker processes. */
  workers?: () => WorkerStatus[];
}

/** How long an ended shadow stays in the status report. */
const SHADOW_SHOWN_MS = 3600_000;

export async function statusReport(
  plane: ControlPlane,
  { sampler, certificates, workers }: StatusSources = {},
): Promise<StatusReport> {
  const status = await plane.status();
  const state = plane.state;
  const config = plane.config;
  const clusters: ClusterReport[] = [];
  for (const cluster of status.clusters) {
    const members = cluster.members.map((m) => {
      const key = memberKey(cluster.name, m.id);
      return { ...m, key, ...(sampler ? sampler.rates([key]) : {}) };
    });
    const drainingSince = state.clusters[cluster.name]?.drainingSince;
    const report: ClusterReport = {
      ...cluster,
      members,
      ...(sampler ? sampler.rates(members.map((m) => m.key as `${string}/${string}`)) : {}),
      ...(drainingSince
        ? { drainingSince, drain: await plane.drainProgress({ kind: 'cluster', cluster: cluster.name }, { status }) }
        : {}),
    };
    const qaUrl = qaUrlOf(plane, cluster.name);
    if (qaUrl) report.qaUrl = qaUrl;
    clusters.push(report);
  }
  const certificateOf = new Map((certificates?.() ?? []).map(({ site, ...c }) => [site, c]));
  const sites: SiteReport[] = Object.entries(config.sites).map(([name, site]) => ({
    name,
    hosts: site.hosts,
    routes: site.routes.map((r) => ({
      path: r.path,
      clusters: r.clusters,
      balance: r.balance,
      traffic: routeTraffic(r),
      ...(r.sticky ? { sticky: r.sticky.mode } : {}),
    })),
    ...state.sites[name],
    ...(certificateOf.has(name) ? { certificate: certificateOf.get(name)! } : {}),
  }));
  const drift = plane.drift;
  const previews = listPreviews(state.previews, Date.now());
  const shadow = plane.shadowReport();
  return {
    driver: status.driver,
    store: plane.store.description,
    config: plane.loaded.file,
    at: new Date().toISOString(),
    sites,
    clusters,
    warnings: status.warnings,
    ...(drift ? { drift } : {}),
    ...(previews.length > 0 ? { previews } : {}),
    ...(shadow && Date.parse(shadow.until) > Date.now() - SHADOW_SHOWN_MS ? { shadow } : {}),
    ...(workers ? { workers: workers() } : {}),
  };
}

/**
 * The URL QA uses for a cluster: its `qa_url`, else the first host of the first site whose routes are
 * pinned to it alone, on the first http listener.
 */
export function qaUrlOf(plane: ControlPlane, cluster: string): string | undefined {
  return qaUrlFor(plane.config, cluster);
}

export function qaUrlFor(config: DayshiftConfig, cluster: string): string | undefined {
  const explicit = config.clusters[cluster]?.qa_url;
  if (explicit) return explicit;
  for (const site of Object.values(config.sites)) {
    const pinned = site.routes.every(
      (r) => r.clusters.length === 1 && r.clusters[0] === cluster && routeTraffic(r) === 'pinned',
    );
    const host = site.hosts.find((h) => !h.includes('*'));
    if (!pinned || !host) continue;
    const http = config.listen.http;
    const listener = Array.isArray(http) ? http[0] : http;
    if (listener) return `http://${host}${listener.port === 80 ? '' : `:${listener.port}`}/`;
    const https = config.listen.https;
    const secure = Array.isArray(https) ? https[0] : https;
    if (secure) return `https://${host}${secure.port === 443 ? '' : `:${secure.port}`}/`;
  }
  return undefined;
}

/**
 * The http listener QA checks connect to: the first one that takes connections without a PROXY protocol
 * header (-1: none does). Its index is also its place in the proxy's bound addresses.
 */
export function qaListenerIndex(config: DayshiftConfig): number {
  return [config.listen.http ?? []].flat().findIndex((l) => !('proxy_protocol' in l && l.proxy_protocol));
}

/** Where a listener answers on this machine: a wildcard address is reached on loopback. */
export function listenerOrigin(
  address: { host: string; port: number } | undefined,
  scheme = 'http',
): string | undefined {
  if (!address) return undefined;
  const { host, port } = address;
  const reachable =
    host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${reachable}:${port}`;
}
