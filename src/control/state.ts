// Desired runtime state: what operators (CLI, API, dashboard, release conductor) have set. It lives in
// the store under the key "state" and survives restarts; the proxy turns it into routing snapshots.
import type { DayshiftConfig } from '../config/schema.js';
import { memberKey, type AdminState, type MemberKey, type TrafficState } from '../model.js';

export interface ClusterDesired {
  traffic: TrafficState;
  /** Share of new sessions among live clusters on shared routes. */
  weight: number;
  /** ISO time the cluster entered `draining` (drain deadline counts from it). */
  drainingSince?: string;
  drainDeadline?: DrainDeadline;
}

/**
 * The deadline a drain was started with. When it passes, the target's open tunnels are closed, and the
 * audit log says so in the name of whoever set it.
 */
export interface DrainDeadline {
  /** ISO time. */
  at: string;
  who: string;
  from: string;
}

export interface MemberDesired {
  admin: AdminState;
  weight: number;
  drainingSince?: string;
  drainDeadline?: DrainDeadline;
}

export interface Maintenance {
  message: string;
  /** ISO time maintenance ends by itself, if set. */
  until?: string;
}

export interface Pause {
  /** ISO time held requests are released. */
  until: string;
  /** What held requests get when the pause ends without `resume`: served, or 503. */
  then: 'serve' | 'reject';
}

export interface SiteDesired {
  maintenance?: Maintenance;
  pause?: Pause;
}

/**
 * A preview: browsers holding its signed link's cookie are pinned to `cluster` on the public site until
 * `until`, whatever its traffic state. Kept here so that a revocation reaches every instance.
 */
export interface PreviewDesired {
  cluster: string;
  /** The site the link was made for (its first host). */
  site: string;
  /** ISO times. */
  created: string;
  until: string;
  who: string;
  from: string;
  /** Only clients in these addresses or CIDR blocks may open it; absent: anyone with the link. */
  allow?: string[];
  /** The version the cluster runs, when Dayshift knew it (shown in the banner). */
  version?: string;
}

export interface DesiredState {
  clusters: Record<string, ClusterDesired>;
  members: Record<MemberKey, MemberDesired>;
  sites: Record<string, SiteDesired>;
  /** Previews by id; absent in states stored before previews existed. */
  previews?: Record<string, PreviewDesired>;
}

export const STATE_KEY = 'state';

/** The state a fresh installation starts from: what the config file says. */
export function initialState(config: Pick<DayshiftConfig, 'clusters'>): DesiredState {
  const state: DesiredState = { clusters: {}, members: {}, sites: {} };
  for (const [name, cluster] of Object.entries(config.clusters)) {
    state.clusters[name] = { traffic: cluster.traffic, weight: cluster.weight };
    cluster.members.forEach((member, i) => {
      state.members[memberKey(name, memberId(member.route, i))] = { admin: member.state, weight: member.weight };
    });
  }
  return state;
}

/**
 * Fits a stored state to a (possibly changed) config: clusters and members the config no longer has are
 * dropped, new ones start from the config's values, everything else keeps what operators set.
 */
export function reconcileState(config: DayshiftConfig, stored: DesiredState | undefined): DesiredState {
  const fresh = initialState(config);
  if (!stored) return fresh;
  for (const name of Object.keys(fresh.clusters)) {
    const kept = stored.clusters[name];
    if (kept) fresh.clusters[name] = kept;
  }
  for (const key of Object.keys(fresh.members) as MemberKey[]) {
    const kept = stored.members[key];
    if (kept) fresh.members[key] = kept;
  }
  for (const name of Object.keys(config.sites)) {
    const kept = stored.sites[name];
    if (kept) fresh.sites[name] = kept;
  }
  for (const [id, preview] of Object.entries(stored.previews ?? {})) {
    if (Object.hasOwn(config.clusters, preview.cluster)) (fresh.previews ??= {})[id] = preview;
  }
  return fresh;
}

/** A member's id within its cluster: its route, or its 1-based index. */
export function memberId(route: string | undefined, index: number): string {
  return route ?? String(index + 1);
}
