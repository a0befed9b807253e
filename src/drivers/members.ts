// Finds Dayshift members among a load balancer's members. Both drivers share it: the balancer has one
// flat list (Apache's BalancerMembers, HAProxy's servers) and Dayshift groups it into clusters.
import type { ClusterConfig } from '../config/schema.js';
import { type TrafficState, memberId } from '../model.js';
import type { ClusterStatus, MemberStatus } from './driver.js';

export interface PlannedMember {
  cluster: string;
  /** The member's id within its cluster: its route, or its 1-based index. */
  id: string;
  url: string;
  route?: string;
}

/** Every member of every cluster, with its id, in config order. */
export function plannedMembers(clusters: Record<string, ClusterConfig>): PlannedMember[] {
  return Object.entries(clusters).flatMap(([cluster, config]) =>
    config.members.map((m, i) => ({
      cluster,
      id: memberId(m.route, i),
      url: m.url,
      ...(m.route === undefined ? {} : { route: m.route }),
    })),
  );
}

/**
 * A member URL in the form load balancers print it: scheme://host:port plus the path without a trailing
 * slash, lower-cased host, default port filled in (Apache's worker names keep the port as written).
 */
export function normalizeUrl(url: string): string {
  try {
    const u = new URL(url);
    const defaults: Record<string, string> = { 'http:': '80', 'https:': '443', 'ajp:': '8009' };
    const port = u.port || defaults[u.protocol] || '';
    const path = u.pathname.replace(/\/+$/, '');
    return `${u.protocol}//${u.hostname.toLowerCase()}${port ? `:${port}` : ''}${path}`;
  } catch {
    return url;
  }
}

/** Match result: each planned member with its balancer member (or undefined), and balancer members no cluster claims. */
export interface Matched<T> {
  pairs: { planned: PlannedMember; found: T | undefined }[];
  unclaimed: T[];
}

export function matchMembers<T>(
  planned: PlannedMember[],
  found: T[],
  key: (p: PlannedMember) => string | undefined,
  foundKey: (f: T) => string,
): Matched<T> {
  const byKey = new Map<string, T>();
  for (const f of found) byKey.set(foundKey(f), f);
  const claimed = new Set<T>();
  const pairs = planned.map((p) => {
    const k = key(p);
    const f = k === undefined ? undefined : byKey.get(k);
    if (f !== undefined) claimed.add(f);
    return { planned: p, found: f };
  });
  return { pairs, unclaimed: found.filter((f) => !claimed.has(f)) };
}

/**
 * Clusters as a load balancer that knows only members shows them: each cluster's traffic state is read
 * from its members, and its weight is their weights' sum (the balancer shares traffic by member weight).
 */
export function clusterStatuses<T>(
  matched: Matched<T>,
  memberStatus: (planned: PlannedMember, found: T) => MemberStatus,
): ClusterStatus[] {
  const clusters = new Map<string, ClusterStatus>();
  for (const { planned, found } of matched.pairs) {
    let cluster = clusters.get(planned.cluster);
    if (!cluster) {
      cluster = { name: planned.cluster, traffic: 'live', weight: 0, members: [] };
      clusters.set(planned.cluster, cluster);
    }
    if (found !== undefined) cluster.members.push(memberStatus(planned, found));
  }
  for (const cluster of clusters.values()) {
    cluster.traffic = clusterTraffic(cluster.members);
    cluster.weight = cluster.members.reduce((sum, m) => sum + m.weight, 0);
  }
  return [...clusters.values()];
}

/** A cluster's traffic state read from its members: out when none takes requests, draining when none takes new sessions. */
export function clusterTraffic(members: Pick<MemberStatus, 'admin'>[]): TrafficState {
  if (members.length > 0 && members.every((m) => m.admin === 'disabled')) return 'out';
  if (members.length > 0 && members.every((m) => m.admin === 'disabled' || m.admin === 'draining')) return 'draining';
  return 'live';
}
