// Choosing the member for one request on one route: a bound session's member first (route suffix or
// signed cookie), failover within its cluster when that member cannot serve, else a new member from the
// route's live candidates, else its standby members. Pure function of the snapshot and live counters.
import type { StickyConfig } from '../config/schema.js';
import type { AdminState, TrafficState } from '../model.js';
import type { MemberRuntime } from './member.js';
import type { Candidate, Policy } from './policy.js';
import { routeSession, cookieValue, DEFAULT_PROXY_COOKIE, type StickySigner } from './sticky.js';

export interface ClusterGroup {
  name: string;
  traffic: TrafficState;
  /** Ready members, for failover of sessions bound to a member of this cluster. */
  ready: Candidate[];
  failover: Policy;
  /** Whether the route's cluster states apply (shared) or not (pinned). */
  shared: boolean;
}

export interface BoundEntry {
  member: MemberRuntime;
  admin: AdminState;
  group: ClusterGroup;
}

export interface RouteTable {
  policy: Policy;
  sticky: StickyConfig | undefined;
  /** Candidates for new sessions: ready members of live clusters (all clusters when pinned). */
  fresh: Candidate[];
  standby: Candidate[];
  standbyPolicy: Policy;
  /** Route id (route mode) or member key (cookie mode) → member. */
  byTarget: Map<string, BoundEntry>;
}

export interface Selection {
  member: MemberRuntime;
  /** The session the request carried and that still maps to this member (reported to the observer). */
  session: string | undefined;
  /** Cookie mode: the member changed or there was no valid cookie: set a new one. */
  newBinding: boolean;
}

export type SelectFailure = 'none-available' | 'bound-unavailable';

/**
 * `pinned`: a preview pins the request to this cluster of the route, whatever its traffic state: a bound
 * session stays with its member when that member is in the cluster, anything else goes to the cluster's
 * ready members (never to another cluster).
 */
export function select(
  table: RouteTable,
  cookieHeader: string | undefined,
  path: string,
  signer: StickySigner,
  now: number,
  exclude: readonly MemberRuntime[] | undefined,
  pinned?: ClusterGroup,
): Selection | SelectFailure {
  const sticky = table.sticky;
  if (sticky) {
    const bound =
      sticky.mode === 'route'
        ? routeSession(sticky, cookieHeader, path)
        : signer.verify(cookieValue(cookieHeader, sticky.cookie ?? DEFAULT_PROXY_COOKIE));
    const found = bound && table.byTarget.get(bound.target);
    const entry = pinned && found && found.group !== pinned ? undefined : found;
    if (bound && entry) {
      const group = entry.group;
      const clusterServes = !group.shared || group.traffic !== 'out' || group === pinned;
      if (
        clusterServes &&
        entry.admin !== 'disabled' &&
        entry.member.usable(now) &&
        (exclude === undefined || !exclude.includes(entry.member))
      ) {
        return { member: entry.member, session: bound.session, newBinding: false };
      }
      if (sticky.nofailover) return 'bound-unavailable';
      if (clusterServes) {
        const c = group.failover.pick(group.ready, now, exclude);
        if (c)
          return { member: c.member, session: sticky.mode === 'route' ? bound.session : undefined, newBinding: true };
      }
    }
  }
  if (pinned) {
    const c = pinned.failover.pick(pinned.ready, now, exclude);
    return c ? { member: c.member, session: undefined, newBinding: sticky !== undefined } : 'none-available';
  }
  const c = table.policy.pick(table.fresh, now, exclude) ?? table.standbyPolicy.pick(table.standby, now, exclude);
  if (!c) return 'none-available';
  return { member: c.member, session: undefined, newBinding: sticky !== undefined };
}
