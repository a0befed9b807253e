// The built-in proxy as the control plane sees it. The control plane owns desired state and hands it
// over with apply(); the proxy turns it into an immutable routing snapshot, swapped in atomically.
import type { AddressInfo } from 'node:net';
import type { HandedSocket } from '../socket-activation.js';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { Health, MemberKey, DesiredState } from '../model.js';
import type { CertificateTable } from '../tls/certificates.js';
import type { ShadowStats } from './shadow.js';

/** Counts by status class: index 0 = 1xx … 4 = 5xx. */
export type StatusClassCounts = [number, number, number, number, number];

/** Index of a status in StatusClassCounts: 1xx → 0 … 5xx → 4 (anything outside clamped to the ends). */
export function statusClass(status: number): number {
  return Math.min(4, Math.max(0, Math.floor(status / 100) - 1));
}

export interface MemberStats {
  key: MemberKey;
  cluster: string;
  id: string;
  url: string;
  health: Health;
  /** Why the member is down (last check error, or passive ejection), when it is. */
  healthReason?: string;
  inFlight: number;
  /** Requests answered by the member since start, by status class. */
  responses: StatusClassCounts;
  /** Exchanges that failed (connect error, timeout, reset): the proxy answered 502/504 or retried. */
  failures: number;
  /**
   * Latency to response headers since start: latencyBuckets[i] counts responses slower than bucket i-1's
   * bound and at most LATENCY_BUCKETS_MS[i]; the extra last entry counts the slower ones (+Inf).
   */
  latencyBuckets: number[];
  latencySumMs: number;
  openTunnels: number;
}

export interface SiteStats {
  name: string;
  /** Responses the proxy sent on this site, by status class. */
  responses: StatusClassCounts;
}

export interface ProxyStats {
  members: MemberStats[];
  sites: SiteStats[];
  /** The copies and comparison of the shadow in force or last in force on this instance, if any. */
  shadow?: ShadowStats | undefined;
}

/** Upper bounds (ms) of the latency histogram buckets; the last bucket is +Inf. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

/**
 * Told about sessions, so drains can wait for them. Only sessions a member really issued count: a client
 * can put any id with any route suffix in its cookie, and such a session must neither hold a drain open
 * nor push real sessions out of the bounded tracker.
 */
export interface SessionObserver {
  /** A session issued to `member`: its Set-Cookie (route mode), or the proxy's signed cookie (cookie mode). */
  issued(member: MemberKey, session: string, now: number): void;
  /** A request of a session bound to `member`: refreshes it when it was issued; otherwise nothing. */
  seen(member: MemberKey, session: string, now: number): void;
}

export interface ProxyOptions {
  config: LoadedConfig;
  state: DesiredState;
  logger: Logger;
  sessions?: SessionObserver;
  /** Key for signing sticky cookies (cookie mode); else config cookie_secret, else a per-process key. */
  cookieSecret?: string;
  /** Certificates and challenges from ACME (sites with tls.acme): served by SNI, http-01 answered before routing. */
  certificates?: CertificateTable;
  /**
   * Health comes from outside (a worker: the main process checks members once for all workers and
   * sends the results with setHealth): no health checker runs here.
   */
  externalHealth?: boolean;
}

/** A member's health as checked once for all workers (src/workers/health-monitor.ts). */
export interface HealthReport {
  key: MemberKey;
  health: Health;
  reason?: string;
}

export interface ProxyHandle {
  /**
   * Swaps in a new snapshot: applies to the next request; requests in flight keep theirs. With workers,
   * resolves once every worker has swapped it in ("out" means out everywhere).
   */
  apply(config: LoadedConfig, state: DesiredState): void | Promise<void>;
  stats(): ProxyStats;
  /** With workers: gathers every worker's figures now, so that stats() then counts everything until now. */
  refreshStats?(): Promise<void>;
  /** With externalHealth: the members' health, checked elsewhere. */
  setHealth?(reports: HealthReport[]): void;
  /** Closes the open upgrade tunnels of these members, `batch` at a time every `intervalMs`. */
  closeTunnels(members: MemberKey[], options: { batch: number; intervalMs: number }): Promise<number>;
  addresses(): { http: AddressInfo[]; https: AddressInfo[] };
  /** Puts a session ticket key (48 bytes) in force on the https listeners (shared by instances: ticket-keys.ts). */
  setTicketKeys(keys: Buffer): void;
  /** The listening sockets of the http and https listeners, to hand to the next generation at an upgrade. */
  listeningSockets(): HandedSocket[];
  /** Stops accepting, lets requests in flight finish within graceMs, then closes everything. */
  close(graceMs: number): Promise<void>;
}
