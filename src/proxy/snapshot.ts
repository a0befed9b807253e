// The immutable routing snapshot: sites by host, routes by longest prefix, per-route candidate lists
// precomputed from config and desired state. apply() builds a new one and swaps it in; a request keeps
// the snapshot it started with. Live counters (MemberRuntime, site counters) are shared across snapshots.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import { routeTraffic, type DayshiftConfig, type SiteConfig, type StickyConfig } from '../config/schema.js';
import { memberKey, type MemberKey, type TrafficState, type DesiredState, memberId } from '../model.js';
import type { MemberRuntime } from '../balance/member.js';
import { createPolicy, RoundRobin, type Candidate } from '../balance/policy.js';
import type { BoundEntry, ClusterGroup, RouteTable } from '../balance/select.js';
import { statusClass, type StatusClassCounts } from './handle.js';
import { buildPreviews, type PreviewPin } from './preview.js';
import type { RetryPolicy } from './retry.js';
import type { ShadowCopier, ShadowPlan } from './shadow.js';
import { messageOf } from '../errors.js';

export interface RouteSnapshot extends RouteTable {
  prefix: string;
  /** With strip_prefix: the prefix the member does not see, without its trailing "/"; else "". */
  stripped: string;
  /** Cluster name → traffic state and, while draining, its deadline (ms), for the drain notice. */
  clusters: Map<string, ClusterGroup & { drainDeadline: number | undefined }>;
}

export interface SiteCounters {
  responses: StatusClassCounts;
}

export interface SiteSnapshot {
  name: string;
  config: SiteConfig;
  allow: BlockList | undefined;
  deny: BlockList | undefined;
  routes: RouteSnapshot[];
  maintenance: { message: string; until: number | undefined } | undefined;
  pause: { until: number; then: 'serve' | 'reject' } | undefined;
  /** redirect_https: what follows the host in the Location (":8443", or "" for 443); undefined when off. */
  httpsPort: string | undefined;
  /** The Strict-Transport-Security value for HTTPS responses; undefined when off. */
  hsts: string | undefined;
  /** Replacement pages (HTML) by status, read at apply time. */
  errorPages: Map<number, string>;
  counters: SiteCounters;
}

export interface Snapshot {
  config: DayshiftConfig;
  exact: Map<string, SiteSnapshot>;
  /** `*.example.com` sites by the suffix ".example.com". */
  wildcard: Map<string, SiteSnapshot>;
  fallback: SiteSnapshot | undefined;
  trusted: BlockList | undefined;
  memberOfCluster: Map<string, MemberRuntime[]>;
  /** config.request_id_header in lower case, as node:http names incoming headers. */
  requestIdHeader: string;
  /** retries.*, with the budget resolved; `timeFirst`: the budget is shorter than one attempt may take. */
  retry: RetryPolicy & { budgetMs: number; timeFirst: boolean };
  /** Previews by id (src/proxy/preview.ts); empty, the preview cookie is not even looked for. */
  previews: Map<string, PreviewPin>;
  /** The shadow in force (src/proxy/shadow.ts); undefined, answered requests are not even looked at. */
  shadow: ShadowPlan | undefined;
}

/** The path as the member sees it: without the route's prefix when strip_prefix is set. */
export function memberPath(route: RouteSnapshot, path: string): string {
  if (route.stripped === '') return path;
  const rest = path.slice(route.stripped.length);
  return rest[0] === '/' ? rest : `/${rest}`;
}

/** Counts a response the proxy sent on a site (for status and /metrics). */
export function countStatus(site: SiteSnapshot | undefined, status: number): void {
  if (site) site.counters.responses[statusClass(status)]!++;
}

/** Whether the site answers with its maintenance page at `now` (a timed maintenance ends by itself). */
export function inMaintenance(site: SiteSnapshot, now: number): boolean {
  return site.maintenance !== undefined && (site.maintenance.until === undefined || site.maintenance.until > now);
}

function blockList(entries: string[] | undefined): BlockList | undefined {
  if (!entries || entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const [ip, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(bits), family);
  }
  return list;
}

/** Whether a client address is in a list; IPv4-mapped IPv6 addresses count as IPv4. */
export function listHas(list: BlockList, address: string): boolean {
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return list.check(address.slice(7), 'ipv4');
  return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Host header → the name sites are matched on: lower case, without port and without the trailing dot of
 * an absolute name, so that `Internal.Local.:80` and `internal.local` are one site (and one allow/deny).
 * '' for a malformed authority (empty, an unclosed or unbracketed IPv6 literal, empty labels): answered 400.
 */
export function hostName(host: string | undefined): string {
  if (!host) return '';
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.indexOf(']') + 1;
    if (end === 0 || (end < host.length && host.charCodeAt(end) !== 58) /* : */) return '';
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) {
      if (host.indexOf(':', colon + 1) >= 0) return '';
      end = colon;
    }
    if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
    if (end === 0 || host.charCodeAt(0) === 46 || host.charCodeAt(end - 1) === 46 || host.includes('..')) return '';
  }
  return host.slice(0, end).toLowerCase();
}

export function matchSite(snapshot: Snapshot, host: string): SiteSnapshot | undefined {
  const exact = snapshot.exact.get(host);
  if (exact) return exact;
  const dot = host.indexOf('.');
  if (dot > 0) {
    const wild = snapshot.wildcard.get(host.slice(dot));
    if (wild) return wild;
  }
  return snapshot.fallback;
}

/** Longest prefix on segment boundaries: "/app" matches /app, /app/x, /app?q — not /application. */
export function matchRoute(site: SiteSnapshot, path: string): RouteSnapshot | undefined {
  for (const route of site.routes) {
    const p = route.prefix;
    if (!path.startsWith(p)) continue;
    if (p.endsWith('/') || path.length === p.length) return route;
    const next = path[p.length];
    if (next === '/' || next === '?' || next === ';') return route;
  }
  return undefined;
}

function isoMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Reads every site's replacement error pages; throws (naming the file) before anything is swapped. */
export function loadErrorPages(loaded: LoadedConfig): Map<string, Map<number, string>> {
  const pages = new Map<string, Map<number, string>>();
  for (const [name, site] of Object.entries(loaded.config.sites)) {
    const byStatus = new Map<number, string>();
    for (const [status, file] of Object.entries(site.error_pages ?? {})) {
      const path = resolve(loaded.baseDir, file);
      try {
        byStatus.set(Number(status), readFileSync(path, 'utf8'));
      } catch (error) {
        throw new Error(`sites.${name}.error_pages.${status}: cannot read ${path}: ${messageOf(error)}`, {
          cause: error,
        });
      }
    }
    pages.set(name, byStatus);
  }
  return pages;
}

/** redirect_https as the Location needs it: the port after the host ("" for HTTPS's own 443). */
function httpsPort(config: DayshiftConfig, site: SiteConfig): string | undefined {
  if (site.redirect_https === false) return undefined;
  const port =
    site.redirect_https === true ? ([config.listen.https ?? []].flat()[0]?.port ?? 443) : site.redirect_https;
  return port === 443 ? '' : `:${port}`;
}

function hstsValue(site: SiteConfig): string | undefined {
  const hsts = site.hsts;
  if (!hsts) return undefined;
  return `max-age=${Math.floor(hsts.max_age / 1000)}${hsts.include_subdomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`;
}

export function buildSnapshot(
  loaded: LoadedConfig,
  state: DesiredState,
  members: Map<MemberKey, MemberRuntime>,
  siteCounters: Map<string, SiteCounters>,
  errorPages: Map<string, Map<number, string>>,
  shadow?: ShadowCopier,
): Snapshot {
  const config = loaded.config;
  const memberOfCluster = new Map<string, MemberRuntime[]>();
  for (const [name, cluster] of Object.entries(config.clusters)) {
    memberOfCluster.set(
      name,
      cluster.members.map((m, i) => members.get(memberKey(name, memberId(m.route, i))) as MemberRuntime),
    );
  }

  const buildRoute = (route: SiteConfig['routes'][number]): RouteSnapshot => {
    const shared = routeTraffic(route) === 'shared';
    const sticky: StickyConfig | undefined = route.sticky;
    const fresh: Candidate[] = [];
    const standby: Candidate[] = [];
    const byTarget = new Map<string, BoundEntry>();
    const clusters: RouteSnapshot['clusters'] = new Map();
    for (const clusterName of route.clusters) {
      const cluster = config.clusters[clusterName]!;
      const desired = state.clusters[clusterName];
      const traffic: TrafficState = desired?.traffic ?? cluster.traffic;
      const clusterWeight = desired?.weight ?? cluster.weight;
      const since = isoMs(desired?.drainingSince);
      const group: ClusterGroup & { drainDeadline: number | undefined } = {
        name: clusterName,
        traffic,
        ready: [],
        failover: new RoundRobin(),
        shared,
        // The drain's own; a state stored before drains had one counts drain.deadline from the start.
        drainDeadline:
          isoMs(desired?.drainDeadline?.at) ?? (since === undefined ? undefined : since + config.drain.deadline),
      };
      clusters.set(clusterName, group);
      const runtimes = memberOfCluster.get(clusterName)!;
      const entries = cluster.members.map((m, i) => {
        const runtime = runtimes[i]!;
        const d = state.members[runtime.key];
        return { runtime, admin: d?.admin ?? m.state, weight: d?.weight ?? m.weight, route: m.route };
      });
      const readyWeight = entries.reduce((sum, e) => sum + (e.admin === 'ready' ? e.weight : 0), 0);
      for (const e of entries) {
        const target = sticky?.mode === 'cookie' ? e.runtime.key : e.route;
        if (target !== undefined) byTarget.set(target, { member: e.runtime, admin: e.admin, group });
        if (e.admin === 'ready') group.ready.push({ member: e.runtime, weight: e.weight, current: 0 });
        const servesNew = !shared || traffic === 'live';
        if (!servesNew) continue;
        // On shared routes a cluster's weight is its share of new sessions, split among its members.
        const weight = shared ? (readyWeight > 0 ? (clusterWeight * e.weight) / readyWeight : 0) : e.weight;
        if (e.admin === 'ready') fresh.push({ member: e.runtime, weight, current: 0 });
        else if (e.admin === 'standby') standby.push({ member: e.runtime, weight: e.weight || 1, current: 0 });
      }
    }
    return {
      prefix: route.path,
      stripped: route.strip_prefix && route.path !== '/' ? route.path.replace(/\/$/, '') : '',
      policy: createPolicy(route.balance),
      sticky,
      fresh,
      standby,
      standbyPolicy: new RoundRobin(),
      byTarget,
      clusters,
    };
  };

  const exact = new Map<string, SiteSnapshot>();
  const wildcard = new Map<string, SiteSnapshot>();
  let fallback: SiteSnapshot | undefined;
  for (const [name, site] of Object.entries(config.sites)) {
    let counters = siteCounters.get(name);
    if (!counters) siteCounters.set(name, (counters = { responses: [0, 0, 0, 0, 0] }));
    const desired = state.sites[name];
    const snapshot: SiteSnapshot = {
      name,
      config: site,
      allow: blockList(site.allow),
      deny: blockList(site.deny),
      routes: site.routes.map(buildRoute).sort((a, b) => b.prefix.length - a.prefix.length),
      maintenance: desired?.maintenance
        ? { message: desired.maintenance.message, until: isoMs(desired.maintenance.until) }
        : undefined,
      pause: desired?.pause ? { until: isoMs(desired.pause.until) ?? 0, then: desired.pause.then } : undefined,
      httpsPort: httpsPort(config, site),
      hsts: hstsValue(site),
      errorPages: errorPages.get(name) ?? new Map(),
      counters,
    };
    for (const host of site.hosts) {
      const h = host === '*' || host.startsWith('*.') ? host.toLowerCase().replace(/\.$/, '') : hostName(host);
      if (h === '*') fallback = snapshot;
      else if (h.startsWith('*.')) wildcard.set(h.slice(1), snapshot);
      else exact.set(h, snapshot);
    }
  }
  const attemptMs = config.timeouts.connect + config.timeouts.first_byte;
  const budgetMs = config.retries.budget ?? attemptMs;
  const retry = {
    attempts: config.retries.attempts,
    on: new Set(config.retries.on),
    budgetMs,
    timeFirst: budgetMs < attemptMs,
  };
  return {
    config,
    exact,
    wildcard,
    fallback,
    trusted: blockList(config.trusted_proxies),
    memberOfCluster,
    requestIdHeader: config.request_id_header.toLowerCase(),
    retry,
    previews: buildPreviews(state, blockList),
    shadow: shadow?.plan(config, state),
  };
}
