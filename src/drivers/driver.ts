// A driver applies traffic states to a load balancer: the built-in proxy, Apache httpd's
// balancer-manager, or HAProxy's Runtime API. The release conductor, CLI and dashboard only see this.
import type { AdminState, Health, TrafficState, DesiredState } from '../model.js';

export type DriverName = 'builtin' | 'apache' | 'haproxy';

/** What a driver can do; anything else it refuses with DriverUnsupportedError. */
export type DriverCapability =
  | 'cluster-traffic'
  | 'cluster-weight'
  | 'member-state'
  | 'member-weight'
  | 'sessions'
  | 'in-flight'
  | 'maintenance'
  | 'pause';

export interface MemberStatus {
  /** The member's id within its cluster: its route, or its 1-based index. */
  id: string;
  url: string;
  route?: string;
  admin: AdminState;
  health: Health;
  weight: number;
  /** Requests in flight now (Apache: busy; HAProxy: scur). */
  inFlight: number;
  /**
   * Requests the load balancer has sent to the member since it started (Apache: elected; HAProxy: stot).
   * A draining member whose count stays still takes no more sticky requests.
   */
  requests?: number;
  /** Milliseconds since `requests` last grew, as far as this Dayshift has watched it. */
  lastRequestMs?: number;
  /** Sessions bound to the member and seen within the idle window, when the driver can tell. */
  boundSessions?: number;
  /** Milliseconds since the least recently seen bound session, when known. */
  oldestIdleMs?: number;
  openTunnels?: number;
}

export interface ClusterStatus {
  name: string;
  traffic: TrafficState;
  weight: number;
  members: MemberStatus[];
}

export interface DriverStatus {
  driver: DriverName;
  clusters: ClusterStatus[];
  /** Things the operator should know, e.g. "BalancerPersist is off: changes are lost on a graceful restart". */
  warnings: string[];
}

export interface StatusOptions {
  sessionIdleMs?: number;
}

export interface Driver {
  readonly name: DriverName;
  readonly capabilities: ReadonlySet<DriverCapability>;
  /**
   * Brings the load balancer to the desired state. `previous` is the state applied last (undefined at
   * start): drivers of external load balancers change only what differs (see applyStateDiff).
   */
  apply(next: DesiredState, previous: DesiredState | undefined): Promise<void>;
  /**
   * Throws DriverUnsupportedError for a desired state this load balancer cannot take, so that the
   * control plane refuses it before storing it rather than fail halfway through apply(). May ask the
   * load balancer (HAProxy: which servers are backups).
   */
  check?(next: DesiredState): void | Promise<void>;
  /**
   * Reads the load balancer's real state and applies `state` again to every member where it differs (an
   * httpd restart without BalancerPersist, an HAProxy reload without a state file); returns what it
   * repaired, one line per member. Absent for the built-in proxy, which is the state itself.
   */
  repair?(state: DesiredState): Promise<string[]>;
  /** `sessionIdleMs`: count bound sessions seen within this window (default drain.session_idle). */
  status(options?: StatusOptions): Promise<DriverStatus>;
  close(): Promise<void>;
}
