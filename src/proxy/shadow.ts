// Shadow traffic: a share of the requests live members answer is copied to a cluster out of traffic, and
// each copy's answer is compared with the live one (status class, latency), then thrown away. The live
// path only offers a copy once the live answer is under way and never waits for it: copies run beside it
// on a bounded queue; when the queue is full they are dropped and counted. Comparisons are read off the
// hot path (src/control/shadow.ts turns these counters into rates and percentiles).
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { MemberRuntime } from '../balance/member.js';
import type { DayshiftConfig } from '../config/schema.js';
import type { DesiredState } from '../model.js';
import { LATENCY_BUCKETS_MS, statusClass, type StatusClassCounts } from './handle.js';
import { Cancel, type ClientInfo, type UpstreamResponse } from './member-transport.js';
import type { RouteSnapshot, SiteSnapshot } from './snapshot.js';
import { messageOf } from '../errors.js';

/** One side's figures over the compared requests: status classes, failed exchanges, latency histogram. */
export interface SideCounts {
  responses: StatusClassCounts;
  /** Exchanges that got no answer (connect error, timeout, reset, no usable member): counted as 5xx. */
  failures: number;
  /** Latency to response headers, in LATENCY_BUCKETS_MS buckets (+Inf last). */
  latencyBuckets: number[];
}

export interface RouteCounts {
  site: string;
  route: string;
  live: SideCounts;
  shadow: SideCounts;
}

/** The copier's counters for the shadow in force (reset when another one starts). */
export interface ShadowStats {
  cluster: string;
  /** The shadow's start (ISO): tells one shadow's figures from the next one's. */
  started: string;
  /** Copies sent to a member of the shadow cluster (or that found none ready: failed). */
  sent: number;
  /** Copies dropped because the queue was full. */
  dropped: number;
  /** Copies answered or failed: the compared requests. */
  compared: number;
  inFlight: number;
  queued: number;
  live: SideCounts;
  shadow: SideCounts;
  routes: RouteCounts[];
}

/** What the snapshot holds while a shadow is in force: read by the forwarder on every answered request. */
export interface ShadowPlan {
  cluster: string;
  /** The shadow's start (ISO), which names it. */
  started: string;
  /** Share of requests copied, 0..1. */
  share: number;
  methods: ReadonlySet<string>;
  /** Epoch ms the shadow ends. */
  until: number;
  /** The header marking copies, lower case. */
  header: string;
  copier: ShadowCopier;
}

function sideCounts(): SideCounts {
  return { responses: [0, 0, 0, 0, 0], failures: 0, latencyBuckets: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0) };
}

function count(side: SideCounts, status: number | undefined, latencyMs: number): void {
  if (status === undefined) side.failures++;
  else side.responses[statusClass(status)]!++;
  let i = 0;
  while (i < LATENCY_BUCKETS_MS.length && latencyMs > LATENCY_BUCKETS_MS[i]!) i++;
  side.latencyBuckets[i]!++;
}

/** A live exchange a live member answered, as the forwarder offers it for copying. */
export interface LiveExchange {
  site: SiteSnapshot;
  route: RouteSnapshot;
  /** The cluster of the member that answered. */
  cluster: string;
  method: string;
  /** The path as members see it. */
  path: string;
  /** The headers the live member got (the copy's host and marker are set when it is sent). */
  headers: [string, string][];
  client: ClientInfo;
  status: number;
  latencyMs: number;
}

/** One copy waiting for a slot: the live exchange it copies, and the shadow it is for. */
interface Copy {
  plan: ShadowPlan;
  live: LiveExchange;
}

/**
 * Long-lived (kept across snapshots, like member runtimes): the queue, the copies in flight and the
 * counters of the shadow in force.
 */
export class ShadowCopier {
  private stats: ShadowStats | undefined;
  private readonly routes = new Map<string, RouteCounts>();
  private readonly queue: Copy[] = [];
  private inFlight = 0;
  private limits = { queue: 1000, concurrency: 32, timeoutMs: 10_000 };
  /** The start of the shadow in force; copies queued for an earlier one (or after a stop) are not sent. */
  private inForce: string | undefined;

  constructor(private readonly logger: Logger) {}

  /** The snapshot's shadow for a desired state (undefined: none in force); a new shadow starts new counters. */
  plan(config: DayshiftConfig, state: DesiredState): ShadowPlan | undefined {
    const s = config.shadow;
    this.limits = { queue: s.queue, concurrency: s.concurrency, timeoutMs: s.timeout };
    const desired = state.shadow;
    const until = desired ? Date.parse(desired.until) : NaN;
    this.inForce = undefined;
    if (!desired || !Object.hasOwn(config.clusters, desired.cluster)) return undefined;
    // Ended (stopped, or past its time): nothing to look at per request; its figures stay readable.
    if (!(until > Date.now())) return undefined;
    this.inForce = desired.started;
    if (this.stats?.started !== desired.started || this.stats.cluster !== desired.cluster) {
      this.routes.clear();
      this.stats = {
        cluster: desired.cluster,
        started: desired.started,
        sent: 0,
        dropped: 0,
        compared: 0,
        inFlight: 0,
        queued: 0,
        live: sideCounts(),
        shadow: sideCounts(),
        routes: [],
      };
    }
    return {
      cluster: desired.cluster,
      started: desired.started,
      share: desired.percent / 100,
      methods: new Set(desired.methods),
      until,
      header: s.header.toLowerCase(),
      copier: this,
    };
  }

  /**
   * Called once a live member's answer is under way: maybe copies the request to the shadow cluster.
   * Returns at once; nothing it does can reach the client's exchange.
   */
  offer(plan: ShadowPlan, live: LiveExchange): void {
    if (Math.random() >= plan.share || !plan.methods.has(live.method) || live.cluster === plan.cluster) return;
    // Only routes that balance over the shadow cluster: the requests it would serve once live.
    if (!live.route.clusters.has(plan.cluster) || Date.now() >= plan.until) return;
    if (this.inFlight < this.limits.concurrency) this.send({ plan, live });
    else if (this.queue.length < this.limits.queue) this.queue.push({ plan, live });
    else this.stats!.dropped++;
  }

  /** The counters of the shadow in force or last in force (copies): undefined before any. */
  read(): ShadowStats | undefined {
    const stats = this.stats;
    if (!stats) return undefined;
    return structuredClone({
      ...stats,
      inFlight: this.inFlight,
      queued: this.queue.length,
      routes: [...this.routes.values()],
    });
  }

  /** Forgets the queued copies (the proxy closes); those in flight finish or time out by themselves. */
  close(): void {
    this.queue.length = 0;
  }

  /** Sends queued copies while slots are free. */
  private drain(): void {
    while (this.inFlight < this.limits.concurrency) {
      const next = this.queue.shift();
      if (!next) return;
      this.send(next);
    }
  }

  private send(copy: Copy): void {
    const { plan, live } = copy;
    const route = live.route;
    // Queued for a shadow that has ended since: not sent, not counted.
    if (plan.started !== this.inForce || Date.now() >= plan.until) return;
    this.stats!.sent++;
    this.inFlight++;
    const group = route.clusters.get(plan.cluster);
    const member = group?.failover.pick(group.ready, Date.now(), undefined)?.member;
    const t0 = performance.now();
    if (!member) return this.done(copy, undefined, 0, undefined);
    const headers: [string, string][] = [];
    const preserveHost = live.site.config.preserve_host;
    for (const header of live.headers) {
      const name = header[0];
      if (name === 'content-length' || name === 'transfer-encoding' || name === 'expect' || name === plan.header)
        continue;
      headers.push(name === 'host' && !preserveHost ? ['host', member.url.host] : header);
    }
    headers.push([plan.header, '1']);
    const cancel = new Cancel();
    const timer = setTimeout(() => cancel.abort(new Error('shadow copy timed out')), this.limits.timeoutMs);
    timer.unref();
    member.inFlight++;
    member.transport
      .request({
        method: live.method,
        path: live.path,
        headers,
        body: null,
        client: live.client,
        ...(member.config.route !== undefined ? { route: member.config.route } : {}),
        signal: cancel,
      })
      .then(
        (response) => this.discard(copy, member, response, performance.now() - t0, cancel, timer),
        (error: unknown) => {
          clearTimeout(timer);
          member.inFlight--;
          this.done(copy, undefined, performance.now() - t0, error);
        },
      );
  }

  /** Reads the shadow's answer to its end and throws it away; the copy's slot is free after it. */
  private discard(
    copy: Copy,
    member: MemberRuntime,
    response: UpstreamResponse,
    latencyMs: number,
    cancel: Cancel,
    timer: NodeJS.Timeout,
  ): void {
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      member.inFlight--;
      this.done(copy, response.status, latencyMs, undefined);
    };
    if (response.whole?.() !== undefined) return settle();
    const body = response.body;
    cancel.addEventListener('abort', () => body.destroy());
    body.on('error', settle);
    body.once('end', settle);
    body.once('close', settle);
    body.resume();
  }

  private done(copy: Copy, status: number | undefined, latencyMs: number, error: unknown): void {
    this.inFlight--;
    const stats = this.stats;
    // A copy of a shadow that has since been replaced: its figures belong to none.
    if (stats && stats.started === copy.plan.started) {
      stats.compared++;
      count(stats.live, copy.live.status, copy.live.latencyMs);
      count(stats.shadow, status, latencyMs);
      const key = `${copy.live.site.name} ${copy.live.route.prefix}`;
      let route = this.routes.get(key);
      if (!route)
        this.routes.set(
          key,
          (route = {
            site: copy.live.site.name,
            route: copy.live.route.prefix,
            live: sideCounts(),
            shadow: sideCounts(),
          }),
        );
      count(route.live, copy.live.status, copy.live.latencyMs);
      count(route.shadow, status, latencyMs);
    }
    if (error !== undefined) this.logger.debug({ err: messageOf(error), path: copy.live.path }, 'shadow copy failed');
    this.drain();
  }
}
