// Each Dayshift instance publishes its live figures under `instances/<id>` with a TTL; status, the
// dashboard and drain waiting read every instance's figures and add them up. With etcd the key hangs
// off a lease, so an instance that dies drops out when the lease expires; with the file store the
// figures expire unless republished, which startPublishing() does.
import { hostname } from 'node:os';
import type { Health, MemberKey } from '../model.js';
import type { BoundSessions } from '../control/session-tracker.js';
import type { ProxyStats } from '../proxy/handle.js';
import type { Store } from '../store/store.js';

export const INSTANCES_PREFIX = 'instances/';
/** Default TTL of published figures: an instance that died is gone from the totals after this. */
export const DEFAULT_FIGURES_TTL_SECONDS = 10;

export interface MemberFigures {
  inFlight: number;
  /** Bound sessions seen within the drain idle window. */
  sessions: number;
  tunnels: number;
  /** Health as this instance's checks see the member. */
  health: Health;
}

export interface InstanceFigures {
  id: string;
  host: string;
  pid: number;
  version: string;
  /** ISO time the figures were taken. */
  at: string;
  members: Record<MemberKey, MemberFigures>;
}

export interface MemberTotals extends MemberFigures {
  /** Health per instance id, so that "down as seen from b" can be shown. */
  healthBy: Record<string, Health>;
}

export interface InstanceTotals {
  instances: Pick<InstanceFigures, 'id' | 'host' | 'pid' | 'version' | 'at'>[];
  /** Sums over every instance; health is the worst any instance sees. */
  members: Record<MemberKey, MemberTotals>;
}

/** A stable id for this process, usable as a store key: `<host>-<pid>`. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Builds this instance's figures from the proxy's stats and the session tracker's counts. */
export function instanceFigures(
  identity: { id: string; version: string },
  stats: ProxyStats,
  sessions: ReadonlyMap<MemberKey, BoundSessions>,
  now = new Date(),
): InstanceFigures {
  const members: Record<MemberKey, MemberFigures> = {};
  for (const m of stats.members) {
    members[m.key] = {
      inFlight: m.inFlight,
      sessions: sessions.get(m.key)?.active ?? 0,
      tunnels: m.openTunnels,
      health: m.health,
    };
  }
  return {
    id: identity.id,
    host: hostname(),
    pid: process.pid,
    version: identity.version,
    at: now.toISOString(),
    members,
  };
}

export function publishInstance(
  store: Store,
  figures: InstanceFigures,
  ttlSeconds = DEFAULT_FIGURES_TTL_SECONDS,
): Promise<void> {
  return store.publish(`${INSTANCES_PREFIX}${figures.id}`, figures, ttlSeconds);
}

export interface Publisher {
  /** Publishes fresh figures now (e.g. right after a drain started) and resolves once written. */
  publishNow(): Promise<void>;
  /** Stops republishing; the figures disappear when the store closes or the TTL runs out. */
  stop(): void;
}

/**
 * Republishes `collect()` every intervalMs (default a third of the TTL, so that a missed round or two
 * does not make a live instance vanish). When rounds fail (etcd away), onOutage hears of the first
 * failure only and onRecovered of the first success after it, with the outage's length: an outage is
 * two log lines, not one per round. A round still running when the next is due is not doubled.
 */
export function startPublishing(
  store: Store,
  collect: () => InstanceFigures,
  options: {
    ttlSeconds?: number;
    intervalMs?: number;
    onOutage?: (err: unknown) => void;
    onRecovered?: (outage: { ms: number; failedRounds: number }) => void;
  } = {},
): Publisher {
  const ttl = options.ttlSeconds ?? DEFAULT_FIGURES_TTL_SECONDS;
  const interval = options.intervalMs ?? (ttl * 1000) / 3;
  const publishNow = () => publishInstance(store, collect(), ttl);
  let running = false;
  let outage: { since: number; failedRounds: number } | undefined;
  const round = async (): Promise<void> => {
    try {
      await publishNow();
      if (outage) options.onRecovered?.({ ms: Date.now() - outage.since, failedRounds: outage.failedRounds });
      outage = undefined;
    } catch (err) {
      if (!outage) {
        outage = { since: Date.now(), failedRounds: 0 };
        options.onOutage?.(err);
      }
      outage.failedRounds++;
    }
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void round().finally(() => (running = false));
  }, interval);
  timer.unref();
  return { publishNow, stop: () => clearInterval(timer) };
}

export async function listInstances(store: Store): Promise<InstanceFigures[]> {
  return (await store.list<InstanceFigures>(INSTANCES_PREFIX)).map((item) => item.value);
}

const HEALTH_RANK: Record<Health, number> = { up: 0, unknown: 1, down: 2 };

export function worstHealth(a: Health, b: Health): Health {
  return HEALTH_RANK[b] > HEALTH_RANK[a] ? b : a;
}

/** Adds every instance's figures up per member: in flight, sessions and tunnels summed, health the worst. */
export function aggregateInstances(instances: InstanceFigures[]): InstanceTotals {
  const members: Record<MemberKey, MemberTotals> = {};
  for (const instance of instances) {
    for (const [key, figures] of Object.entries(instance.members) as [MemberKey, MemberFigures][]) {
      const total = (members[key] ??= { inFlight: 0, sessions: 0, tunnels: 0, health: 'up', healthBy: {} });
      total.inFlight += figures.inFlight;
      total.sessions += figures.sessions;
      total.tunnels += figures.tunnels;
      total.health = worstHealth(total.health, figures.health);
      total.healthBy[instance.id] = figures.health;
    }
  }
  const summary = instances
    .map(({ id, host, pid, version, at }) => ({ id, host, pid, version, at }))
    .sort((x, y) => x.id.localeCompare(y.id));
  return { instances: summary, members };
}

/** Every live instance's figures, added up. */
export async function instanceTotals(store: Store): Promise<InstanceTotals> {
  return aggregateInstances(await listInstances(store));
}
