// The vocabulary of Dayshift (see docs/design.md). Every layer speaks these words.

/** Traffic state of a cluster on the sites that balance over several clusters. */
export type TrafficState = 'live' | 'draining' | 'out';
export const TRAFFIC_STATES: readonly TrafficState[] = ['live', 'draining', 'out'];

/**
 * Admin state of one member. `draining`: only requests of sessions bound to it; `disabled`: none;
 * `standby`: used only when no ready member of the route can serve (Apache's hot standby, H).
 */
export type AdminState = 'ready' | 'draining' | 'disabled' | 'standby';
export const ADMIN_STATES: readonly AdminState[] = ['ready', 'draining', 'disabled', 'standby'];

/** Why a member exchange failed, in HAProxy's `retry-on` words (config retries.on, src/proxy/retry.ts). */
export type RetryCondition =
  /** Never connected, or nothing of the request was sent: the member cannot have run it. */
  | 'conn-failure'
  /** The member closed or reset the connection after the request, before any response byte. */
  | 'empty-response'
  /** The member answered something that is not HTTP (or not valid AJP). */
  | 'junk-response'
  /** No response head within timeouts.first_byte: the request may well be running. */
  | 'response-timeout';

export const RETRY_CONDITIONS = [
  'conn-failure',
  'empty-response',
  'junk-response',
  'response-timeout',
] as const satisfies readonly RetryCondition[];

/** Health as active and passive checks see it. `unknown` until the first check has run. */
export type Health = 'up' | 'down' | 'unknown';

export type BalancePolicy = 'round-robin' | 'least-busy' | 'p2c-ewma';
export const BALANCE_POLICIES: readonly BalancePolicy[] = ['round-robin', 'least-busy', 'p2c-ewma'];

/** `cluster/member` — a member's stable key; the member part is its route, or its 1-based index. */
export type MemberKey = `${string}/${string}`;

export function memberKey(cluster: string, memberId: string): MemberKey {
  return `${cluster}/${memberId}`;
}

/** A member key's cluster and member id (a cluster name holds no "/"; an id may). */
export function splitMemberKey(key: MemberKey): [cluster: string, member: string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** A member's id within its cluster: its route, or its 1-based index. */
export function memberId(route: string | undefined, index: number): string {
  return route ?? String(index + 1);
}

/**
 * Desired runtime state: what operators (CLI, API, dashboard, release conductor) have set. The control
 * plane keeps it in the store (src/control/desired-state.ts) so it survives restarts; the proxy turns it
 * into routing snapshots, and drivers apply it to Apache or HAProxy.
 */
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
 * `until`, whatever its traffic state. Kept in the desired state so that a revocation reaches every instance.
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

/**
 * Shadow traffic: a share of the public requests a live cluster answers is copied to `cluster` (out of
 * traffic), whose answers are compared and thrown away. Desired state, so every instance copies.
 */
export interface ShadowDesired {
  cluster: string;
  /** Share of requests copied, percent (0 < percent <= 100). */
  percent: number;
  /** Methods copied (upper case); requests with a body are never copied. */
  methods: string[];
  /** ISO times. */
  started: string;
  until: string;
  who: string;
  from: string;
}

export interface DesiredState {
  clusters: Record<string, ClusterDesired>;
  members: Record<MemberKey, MemberDesired>;
  sites: Record<string, SiteDesired>;
  /** Previews by id; absent in states stored before previews existed. */
  previews?: Record<string, PreviewDesired>;
  /** The shadow in force, if any (one at a time); absent in states stored before shadows existed. */
  shadow?: ShadowDesired;
}
