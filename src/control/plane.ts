// The control plane: the one place where runtime state changes. Every change is checked against the
// safety rules, written to the store before it is applied, applied through the driver, and audited.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { routeTraffic, type DayshiftConfig } from '../config/schema.js';
import type { Driver, DriverStatus, StatusOptions } from '../drivers/driver.js';
import { DriverUnsupportedError } from '../drivers/errors.js';
import type {
  AdminState,
  MemberKey,
  TrafficState,
  DesiredState,
  DrainDeadline,
  Maintenance,
  Pause,
  PreviewDesired,
  ShadowDesired,
} from '../model.js';
import type { ProxyHandle } from '../proxy/handle.js';
import type { Store } from '../store/store.js';
import type { Actor, AuditLog } from './audit.js';
import { aggregateInstances, worstHealth, type InstanceFigures } from '../observe/instances.js';
import { DrainDeadlines, type OwnedDeadline } from './drain-deadlines.js';
import { reconcileState, STATE_KEY } from './desired-state.js';
import type { StickySigner } from '../balance/sticky.js';
import { previewToken } from '../proxy/preview.js';
import {
  MAX_PREVIEW_MS,
  newPreviewId,
  previewSite,
  previewUrl,
  resolveAllow,
  type PreviewLink,
  type PreviewRequest,
} from './previews.js';
import { checkShadow, shadowReport, type ShadowReport, type ShadowRequest } from './shadow.js';
import { formatTarget, parseTarget, targetMembers, type Target } from './targets.js';
import { delay } from '../delay.js';
import { Serial } from '../serial.js';
import { messageOf } from '../errors.js';
import { PreviewError, RefusedError, ShadowError, TargetError } from './errors.js';

export interface DrainProgress {
  target: string;
  /** `drained` also when the deadline passed (see `reason`). */
  drained: boolean;
  reason: 'idle' | 'deadline' | 'not-draining' | 'waiting';
  /**
   * What `drained` is judged on: `sessions`, the bound sessions Dayshift's own proxy saw within the idle
   * window; `requests`, the load balancer's count of requests sent to the target (Apache elected, HAProxy
   * stot), still for the idle window. Apache and HAProxy count no sessions, so there is no session count.
   */
  basis: 'sessions' | 'requests';
  inFlight: number;
  /** Bound sessions seen within the idle window (basis `sessions` only). */
  sessions?: number;
  /** Since the least recently seen bound session (basis `sessions` only). */
  oldestIdleMs?: number;
  /** Since the load balancer last sent the target a request, as far as Dayshift watched (basis `requests`). */
  lastRequestMs?: number;
  /** The idle window: no session seen (or no new request) for this long counts as gone. */
  idleMs: number;
  tunnels: number;
  /** ISO times. */
  since?: string;
  deadline?: string;
  remainingMs?: number;
}

/** A repair of the load balancer's state (ControlPlane.verifyDriver). */
export interface DriftRepair {
  /** ISO time. */
  at: string;
  /** One line per member: what it had, what it has again. */
  repaired: string[];
}

/** Whom the audit log names for Dayshift's own repairs. */
const SYSTEM: Actor = { who: 'system', from: 'local' };

export interface DrainWindow {
  deadlineMs?: number;
  idleMs?: number;
}

export interface ControlPlaneOptions {
  loaded: LoadedConfig;
  store: Store;
  driver: Driver;
  audit: AuditLog;
  logger: Logger;
  /** Present with the built-in driver: closes a drain's tunnels at its deadline. */
  proxy?: ProxyHandle;
  /** Other Dayshift instances' live figures (shared etcd store), added to this one's. */
  peers?: () => Promise<InstanceFigures[]>;
  /** The built-in proxy's sticky cookie signer, which signs preview links too (none: no previews). */
  previewSigner?: StickySigner;
}

export class ControlPlane extends EventEmitter<{ change: [DesiredState]; reload: [LoadedConfig] }> {
  private loadedConfig: LoadedConfig;
  private desired: DesiredState;
  private readonly unwatch: () => void;
  /** Serialises changes so that read-modify-write of the state never interleaves. */
  private readonly serial = new Serial();
  private readonly deadlines = new DrainDeadlines((owned) => this.track(this.closeTunnelsAtDeadline(owned)));
  /** Tunnel closings under way (close() waits for them). */
  private readonly closings = new Set<Promise<void>>();
  private lastDrift: DriftRepair | undefined;
  private verifier: NodeJS.Timeout | undefined;
  private closed = false;
  /** Why changes are refused for now (the state is being handed to the next generation), if they are. */
  private held: string | undefined;

  private constructor(
    private readonly options: ControlPlaneOptions,
    state: DesiredState,
  ) {
    super();
    this.loadedConfig = options.loaded;
    this.desired = state;
    this.deadlines.sync(state);
    // Another instance (etcd store) may change the state: adopt it.
    this.unwatch = options.store.watch(
      STATE_KEY,
      (_key, value) => {
        if (value && JSON.stringify(value) !== JSON.stringify(this.desired)) void this.adopt(value as DesiredState);
      },
      // The store was out of reach and changes may have been missed: read the state again.
      () =>
        void options.store.get<DesiredState>(STATE_KEY).then(
          (stored) => {
            if (stored && JSON.stringify(stored.value) !== JSON.stringify(this.desired)) void this.adopt(stored.value);
          },
          (err: unknown) => options.logger.warn({ err }, 'could not re-read the state after the store came back'),
        ),
    );
    this.scheduleVerify();
  }

  static async open(options: ControlPlaneOptions): Promise<ControlPlane> {
    const stored = await options.store.get<DesiredState>(STATE_KEY);
    const state = reconcileState(options.loaded.config, stored?.value);
    // A config whose state the load balancer cannot take is refused before anything is stored or applied.
    await options.driver.check?.(state);
    if (JSON.stringify(state) !== JSON.stringify(stored?.value)) await options.store.put(STATE_KEY, state);
    await options.driver.apply(state, undefined);
    return new ControlPlane(options, state);
  }

  get loaded(): LoadedConfig {
    return this.loadedConfig;
  }

  get config(): DayshiftConfig {
    return this.loadedConfig.config;
  }

  get state(): DesiredState {
    return structuredClone(this.desired);
  }

  get driver(): Driver {
    return this.options.driver;
  }

  get store(): Store {
    return this.options.store;
  }

  /** The last time the load balancer had drifted from the desired state and was repaired. */
  get drift(): DriftRepair | undefined {
    return this.lastDrift;
  }

  /**
   * Reads the load balancer's real state and applies the desired state again where it differs: an httpd
   * restart without BalancerPersist or an HAProxy reload without a state file puts every member back as
   * its config file says. Audited as "drift repaired". Runs every driver.verify_interval, after every
   * change, and before every release step. The built-in proxy cannot drift: nothing to do.
   */
  verifyDriver(): Promise<string[]> {
    return this.serial.run(() => this.repairDrift());
  }

  target(text: string): Target {
    return parseTarget(this.config, text);
  }

  /**
   * live / draining / out for a cluster (members have admin states: setMemberState). Every drain has a
   * deadline: `deadlineMs` (counted from when the drain started), else the one it had, else
   * drain.deadline. When it passes, the cluster's open tunnels are closed in the actor's name.
   */
  setTraffic(
    actor: Actor,
    clusterName: string,
    traffic: TrafficState,
    options: { weight?: number; force?: boolean; deadlineMs?: number } = {},
  ): Promise<DesiredState> {
    const detail: Record<string, unknown> = {
      traffic,
      ...(options.weight !== undefined ? { weight: options.weight } : {}),
    };
    return this.change(actor, traffic, clusterName, detail, (state) => {
      const cluster = state.clusters[clusterName]!;
      this.trackDrain(
        cluster,
        cluster.traffic === 'draining',
        traffic === 'draining',
        actor,
        options.deadlineMs,
        detail,
      );
      cluster.traffic = traffic;
      if (options.weight !== undefined) cluster.weight = options.weight;
      if (!options.force) this.assertEverySiteServed(state, `${traffic} ${clusterName}`);
    });
  }

  setClusterWeight(
    actor: Actor,
    cluster: string,
    weight: number,
    options: { force?: boolean } = {},
  ): Promise<DesiredState> {
    return this.change(actor, 'weight', cluster, { weight }, (state) => {
      state.clusters[cluster]!.weight = weight;
      if (!options.force) this.assertEverySiteServed(state, `weight ${cluster} ${weight}`);
    });
  }

  /** A member's admin state; `deadlineMs` with `draining` as for setTraffic. */
  setMemberState(
    actor: Actor,
    target: Target,
    admin: AdminState,
    options: { force?: boolean; deadlineMs?: number } = {},
  ): Promise<DesiredState> {
    const members = targetMembers(this.config, target);
    const detail: Record<string, unknown> = { admin };
    return this.change(actor, admin === 'ready' ? 'enable' : admin, formatTarget(target), detail, (state) => {
      for (const key of members) {
        const member = state.members[key]!;
        this.trackDrain(member, member.admin === 'draining', admin === 'draining', actor, options.deadlineMs, detail);
        member.admin = admin;
      }
      if (!options.force) this.assertEverySiteServed(state, `${admin} ${formatTarget(target)}`);
    });
  }

  setMemberWeight(
    actor: Actor,
    key: MemberKey,
    weight: number,
    options: { force?: boolean } = {},
  ): Promise<DesiredState> {
    return this.change(actor, 'weight', key, { weight }, (state) => {
      state.members[key]!.weight = weight;
      if (!options.force) this.assertEverySiteServed(state, `weight ${key} ${weight}`);
    });
  }

  setMaintenance(actor: Actor, site: string, maintenance: Maintenance | undefined): Promise<DesiredState> {
    this.assertSite(site);
    return this.change(
      actor,
      maintenance ? 'maintenance on' : 'maintenance off',
      site,
      maintenance ? { ...maintenance } : undefined,
      (state) => {
        const entry = (state.sites[site] ??= {});
        if (maintenance) entry.maintenance = maintenance;
        else delete entry.maintenance;
      },
    );
  }

  setPause(actor: Actor, site: string, pause: Pause | undefined): Promise<DesiredState> {
    this.assertSite(site);
    return this.change(actor, pause ? 'pause' : 'resume', site, pause ? { ...pause } : undefined, (state) => {
      const entry = (state.sites[site] ??= {});
      if (pause) entry.pause = pause;
      else delete entry.pause;
    });
  }

  /**
   * A preview of a cluster on its public site: a signed link whose cookie pins the browser to the
   * cluster until it expires or is revoked. Expired previews are dropped from the state on the way.
   */
  async openPreview(actor: Actor, request: PreviewRequest): Promise<PreviewLink> {
    const signer = this.options.previewSigner;
    if (!signer)
      throw new PreviewError(
        `previews need the built-in proxy: with the ${this.options.driver.name} driver, Dayshift serves no public traffic to pin`,
      );
    const config = this.config;
    const site = previewSite(config, request.cluster, request.site);
    const forMs = request.forMs ?? config.preview.for;
    if (forMs <= 0 || forMs > MAX_PREVIEW_MS)
      throw new PreviewError(`a preview lasts more than 0 and at most 7 days; asked for ${Math.round(forMs / 1000)}s`);
    const allow = resolveAllow(config, request.allow ?? config.preview.allow);
    const now = Date.now();
    // Whole seconds: the cookie's Max-Age and the token's expiry end together.
    const until = Math.ceil((now + forMs) / 1000) * 1000;
    const id = newPreviewId();
    const preview: PreviewDesired = {
      cluster: request.cluster,
      site,
      created: new Date(now).toISOString(),
      until: new Date(until).toISOString(),
      who: actor.who,
      from: actor.from,
      ...(allow ? { allow } : {}),
      ...(request.version ? { version: request.version } : {}),
    };
    await this.change(
      actor,
      'preview',
      request.cluster,
      { id, site, until: preview.until, ...(allow ? { allow } : {}) },
      (state) => {
        const kept = Object.entries(state.previews ?? {}).filter(([, p]) => Date.parse(p.until) > now);
        state.previews = Object.fromEntries([...kept, [id, preview]]);
      },
    );
    const token = previewToken(signer, { id, cluster: request.cluster, until });
    const bound = this.options.proxy?.addresses();
    const ports = {
      ...(bound?.http[0] ? { http: bound.http[0].port } : {}),
      ...(bound?.https[0] ? { https: bound.https[0].port } : {}),
    };
    return { id, ...preview, url: previewUrl(config, site, token, ports), token };
  }

  /** Ends a preview on every instance: its browsers go back to public routing. */
  revokePreview(actor: Actor, id: string): Promise<DesiredState> {
    const preview = this.desired.previews?.[id];
    if (!preview) throw new PreviewError(`no preview "${id}": \`dayshift preview --list\` lists the previews in force`);
    return this.change(actor, 'preview revoke', preview.cluster, { id }, (state) => {
      if (state.previews) delete state.previews[id];
    });
  }

  /**
   * Copies a share of the public requests other clusters answer to `cluster`, out of traffic, until it
   * expires or is stopped; every instance's proxy copies (desired state). Starting one for the cluster
   * a shadow already copies to replaces it (its figures start again).
   */
  async startShadow(actor: Actor, request: ShadowRequest): Promise<ShadowDesired> {
    if (!this.options.proxy)
      throw new ShadowError(
        `shadow traffic needs the built-in proxy: with the ${this.options.driver.name} driver, Dayshift sees no requests to copy`,
      );
    const config = this.config;
    checkShadow(config, this.desired, request);
    const now = Date.now();
    const shadow: ShadowDesired = {
      cluster: request.cluster,
      percent: request.percent,
      methods: request.methods ?? config.shadow.methods,
      started: new Date(now).toISOString(),
      until: new Date(now + (request.forMs ?? config.shadow.for)).toISOString(),
      who: actor.who,
      from: actor.from,
    };
    await this.change(
      actor,
      'shadow',
      request.cluster,
      { percent: shadow.percent, methods: shadow.methods, until: shadow.until },
      (state) => {
        state.shadow = shadow;
      },
    );
    return shadow;
  }

  /** Stops the shadow to `cluster` (any, when undefined) on every instance; false when none was in force. */
  async stopShadow(actor: Actor, cluster?: string): Promise<boolean> {
    const running = this.desired.shadow;
    if (!running || (cluster !== undefined && running.cluster !== cluster)) return false;
    if (Date.parse(running.until) <= Date.now()) return false;
    // Kept in the state, ended: its figures stay readable until the next shadow.
    await this.change(actor, 'shadow stop', running.cluster, undefined, (state) => {
      if (state.shadow) state.shadow.until = new Date().toISOString();
    });
    return true;
  }

  /** The shadow in force or last in force, with this instance's comparison of its copies. */
  shadowReport(): ShadowReport | undefined {
    return shadowReport(this.desired.shadow, this.options.proxy?.stats().shadow, Date.now());
  }

  /**
   * Re-reads the config file. A bad one throws ConfigError and the running config stays; a good one is
   * applied with the operators' runtime state carried over.
   */
  reload(actor: Actor): Promise<LoadedConfig> {
    return this.serial.run(async () => {
      this.refuseWhileHeld();
      const next = await loadConfigFile(this.loadedConfig.file);
      const previous = this.desired;
      const state = reconcileState(next.config, previous);
      await this.options.driver.check?.(state);
      await this.options.store.put(STATE_KEY, state);
      this.loadedConfig = next;
      this.setDesired(state);
      await this.options.driver.apply(state, previous);
      await this.repairDrift();
      await this.options.audit.record(actor, 'reload', next.file);
      this.options.logger.info({ file: next.file }, 'configuration reloaded');
      this.emit('reload', next);
      this.emit('change', this.state);
      return next;
    });
  }

  /** The driver's status; with several instances, in flight, sessions and tunnels are everyone's. */
  async status(options: StatusOptions = {}): Promise<DriverStatus> {
    const status = await this.options.driver.status(options);
    if (this.options.driver.name !== 'builtin') {
      // A load balancer has no cluster weight (each member's is multiplied by it): show Dayshift's, as the
      // built-in proxy does, rather than the sum of the members'.
      for (const cluster of status.clusters)
        cluster.weight = this.desired.clusters[cluster.name]?.weight ?? cluster.weight;
    }
    if (this.lastDrift) {
      status.warnings.push(
        `drift repaired at ${this.lastDrift.at}: the load balancer had lost Dayshift's state (${this.lastDrift.repaired.join('; ')}); applied it again`,
      );
    }
    if (!this.options.peers) return status;
    let peers: InstanceFigures[];
    try {
      peers = await this.options.peers();
    } catch (err) {
      status.warnings.push(`other instances' figures are unavailable (${messageOf(err)}): showing this instance only`);
      return status;
    }
    const totals = aggregateInstances(peers);
    for (const cluster of status.clusters) {
      for (const member of cluster.members) {
        const other = totals.members[`${cluster.name}/${member.id}`];
        if (!other) continue;
        member.inFlight += other.inFlight;
        member.boundSessions = (member.boundSessions ?? 0) + other.sessions;
        member.openTunnels = (member.openTunnels ?? 0) + other.tunnels;
        member.health = worstHealth(member.health, other.health);
      }
    }
    return status;
  }

  /**
   * How far a drain of the target has come, from the driver's live figures. The deadline is the drain's
   * (drain.deadline for a state stored before drains had their own); `deadlineMs` and `idleMs` override it and
   * drain.session_idle for this report only (a release plan, or a reader who waits less long). A caller
   * that has just read status() passes it (`status`) rather than have the figures gathered again.
   */
  async drainProgress(target: Target, options: DrainWindow & { status?: DriverStatus } = {}): Promise<DrainProgress> {
    const status =
      options.status ?? (await this.status(options.idleMs !== undefined ? { sessionIdleMs: options.idleMs } : {}));
    const cluster = status.clusters.find((c) => c.name === target.cluster);
    const members = (cluster?.members ?? []).filter((m) => target.kind === 'cluster' || m.id === target.member);
    const inFlight = members.reduce((n, m) => n + m.inFlight, 0);
    const tunnels = members.reduce((n, m) => n + (m.openTunnels ?? 0), 0);
    const idleMs = options.idleMs ?? this.config.drain.session_idle;
    // Dayshift's own proxy counts bound sessions; Apache and HAProxy count requests per member
    // (MemberStatus.requests, lastRequestMs).
    const basis = this.options.driver.capabilities.has('sessions') ? ('sessions' as const) : ('requests' as const);
    const figures =
      basis === 'sessions'
        ? {
            sessions: members.reduce((n, m) => n + (m.boundSessions ?? 0), 0),
            oldestIdleMs: Math.max(0, ...members.map((m) => m.oldestIdleMs ?? 0)),
          }
        : { lastRequestMs: members.length > 0 ? Math.min(...members.map((m) => m.lastRequestMs ?? 0)) : 0 };
    const quiet = figures.sessions !== undefined ? figures.sessions === 0 : figures.lastRequestMs! >= idleMs;
    const desired =
      target.kind === 'cluster' ? this.desired.clusters[target.cluster] : this.desired.members[target.key];
    const since = desired?.drainingSince;
    const base = { target: formatTarget(target), basis, inFlight, ...figures, idleMs, tunnels };
    if (!since) {
      const stopped =
        target.kind === 'cluster'
          ? this.desired.clusters[target.cluster]?.traffic === 'out'
          : this.desired.members[target.key]?.admin === 'disabled';
      return { ...base, drained: stopped && inFlight + tunnels === 0, reason: 'not-draining' };
    }
    const deadlineAt =
      options.deadlineMs !== undefined
        ? Date.parse(since) + options.deadlineMs
        : desired?.drainDeadline
          ? Date.parse(desired.drainDeadline.at)
          : Date.parse(since) + this.config.drain.deadline;
    const remainingMs = Math.max(0, deadlineAt - Date.now());
    const idle = inFlight === 0 && quiet && tunnels === 0;
    // Idle because the deadline closed the tunnels that were left is still an end by the deadline.
    const cut = remainingMs === 0 && this.deadlines.hasClosedTunnels(target, new Date(deadlineAt).toISOString());
    return {
      ...base,
      drained: idle || remainingMs === 0,
      reason: idle && !cut ? 'idle' : remainingMs === 0 ? 'deadline' : 'waiting',
      since,
      deadline: new Date(deadlineAt).toISOString(),
      remainingMs,
    };
  }

  /**
   * Waits until the target is drained (or its deadline passed), reporting progress. It only watches:
   * closing tunnels at a deadline is the drain's own doing (closeTunnelsAtDeadline), and audited.
   */
  async waitDrained(
    target: Target,
    options: DrainWindow & { signal?: AbortSignal; onProgress?: (p: DrainProgress) => void; pollMs?: number } = {},
  ): Promise<DrainProgress> {
    for (;;) {
      const progress = await this.drainProgress(target, options);
      options.onProgress?.(progress);
      if (progress.reason === 'not-draining' || progress.drained) return progress;
      await delay(options.pollMs ?? 250, options.signal);
    }
  }

  /**
   * Refuses changes and reloads (409, saying `reason`) until resumeChanges(); resolves once a change in
   * progress has been stored, so that what the store holds from then on is the state.
   */
  async holdChanges(reason: string): Promise<void> {
    this.held = reason;
    await this.serial.idle();
  }

  resumeChanges(): void {
    this.held = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.verifier);
    this.unwatch();
    await this.serial.idle();
    this.deadlines.close();
    await Promise.all(this.closings);
  }

  private refuseWhileHeld(): void {
    if (this.held !== undefined) throw new RefusedError(this.held);
  }

  private async repairDrift(): Promise<string[]> {
    const repaired = (await this.options.driver.repair?.(this.desired)) ?? [];
    if (repaired.length === 0) return repaired;
    this.lastDrift = { at: new Date().toISOString(), repaired };
    await this.options.audit.record(SYSTEM, 'drift repaired', this.options.driver.name, { repaired });
    this.options.logger.warn(
      { driver: this.options.driver.name, repaired },
      'the load balancer had drifted from the desired state: applied it again',
    );
    return repaired;
  }

  /** The periodic drift check (driver.verify_interval), read from the config in force at each turn. */
  private scheduleVerify(): void {
    const driver = this.config.driver;
    if (!this.options.driver.repair || this.closed || !driver || driver.type === 'builtin') return;
    this.verifier = setTimeout(() => {
      void this.verifyDriver()
        .catch((err: unknown) =>
          this.options.logger.warn({ err }, 'could not read the load balancer to check it still has the desired state'),
        )
        .finally(() => this.scheduleVerify());
    }, driver.verify_interval);
    this.verifier.unref();
  }

  /**
   * The state in force from now on, and the drain deadlines it holds: scheduled here rather than on
   * 'change', which a failed apply or audit write never emits for a state already taken.
   */
  private setDesired(state: DesiredState): void {
    this.desired = state;
    this.deadlines.sync(state);
  }

  private track(closing: Promise<void>): void {
    this.closings.add(closing);
    void closing.finally(() => this.closings.delete(closing));
  }

  private change(
    actor: Actor,
    action: string,
    target: string,
    detail: Record<string, unknown> | undefined,
    mutate: (state: DesiredState) => void,
  ): Promise<DesiredState> {
    return this.serial.run(async () => {
      this.refuseWhileHeld();
      const previous = this.desired;
      const next = structuredClone(previous);
      mutate(next);
      this.refuseSiteStates(next, previous);
      try {
        await this.options.driver.check?.(next);
      } catch (err) {
        // Refused before anything was stored or applied, like a safety rule (exit 3).
        if (err instanceof DriverUnsupportedError) throw new RefusedError(err.message);
        throw err;
      }
      // Written before it acts: a crash after this line re-applies the same state on start.
      await this.options.store.put(STATE_KEY, next);
      this.setDesired(next);
      await this.options.driver.apply(next, previous);
      // A change the state already held applies nothing: the load balancer may have lost it all the same.
      await this.repairDrift();
      await this.options.audit.record(actor, action, target, detail);
      this.options.logger.info({ who: actor.who, from: actor.from, action, target, ...detail }, 'state changed');
      this.emit('change', this.state);
      return this.state;
    });
  }

  /**
   * Maintenance and pause are the proxy's to answer: a driver without them refuses a site change that
   * asks for one (501) before it is stored, so the state never claims what the load balancer does not do.
   */
  private refuseSiteStates(next: DesiredState, previous: DesiredState): void {
    const { driver } = this.options;
    for (const [name, site] of Object.entries(next.sites)) {
      const before = previous.sites[name];
      const asked = [
        ...(site.maintenance && JSON.stringify(site.maintenance) !== JSON.stringify(before?.maintenance)
          ? (['maintenance'] as const)
          : []),
        ...(site.pause && JSON.stringify(site.pause) !== JSON.stringify(before?.pause) ? (['pause'] as const) : []),
      ];
      for (const capability of asked)
        if (!driver.capabilities.has(capability))
          throw new DriverUnsupportedError({
            driver: driver.name,
            what: capability === 'maintenance' ? `put site ${name} in maintenance` : `pause site ${name}`,
          });
    }
  }

  /**
   * A cluster's or member's drain start and deadline, as it goes to (or stays in) `draining` or leaves
   * it. The deadline is the one asked for (counted from the drain's start), else the one the drain has,
   * else drain.deadline, in the name of whoever asked; `detail` (the audit entry's) records it.
   */
  private trackDrain(
    drain: { drainingSince?: string; drainDeadline?: DrainDeadline },
    wasDraining: boolean,
    draining: boolean,
    actor: Actor,
    deadlineMs: number | undefined,
    detail: Record<string, unknown>,
  ): void {
    if (!draining) {
      delete drain.drainingSince;
      delete drain.drainDeadline;
      return;
    }
    // A target the config file starts as draining has no start time yet: its drain starts now.
    if (!wasDraining || !drain.drainingSince) {
      drain.drainingSince = new Date().toISOString();
      delete drain.drainDeadline;
    }
    if (deadlineMs !== undefined || !drain.drainDeadline) {
      const at = Date.parse(drain.drainingSince) + (deadlineMs ?? this.config.drain.deadline);
      drain.drainDeadline = { at: new Date(at).toISOString(), who: actor.who, from: actor.from };
    }
    detail.deadline = drain.drainDeadline.at;
  }

  /**
   * A drain's deadline passed: its target's open tunnels are closed in spread-out batches, so that
   * reconnecting clients do not arrive all at once, and the audit log records it in the name of whoever
   * set the deadline.
   */
  private async closeTunnelsAtDeadline(owned: OwnedDeadline): Promise<void> {
    const { target, deadline } = owned;
    // With Apache or HAProxy, their listeners hold the tunnels: Dayshift has none to close.
    const proxy = this.options.proxy;
    if (!proxy) return;
    const name = formatTarget(target);
    try {
      const members = new Set(targetMembers(this.config, target));
      if (!proxy.stats().members.some((m) => members.has(m.key) && m.openTunnels > 0)) return;
      // Before the first one closes: a reader must not take the drain for idle.
      this.deadlines.closedTunnels(owned);
      const closed = await proxy.closeTunnels([...members], { batch: 50, intervalMs: 200 });
      if (closed === 0) return;
      await this.options.audit.record({ who: deadline.who, from: deadline.from }, 'close tunnels', name, {
        tunnels: closed,
        deadline: deadline.at,
      });
      this.options.logger.info(
        {
          who: deadline.who,
          from: deadline.from,
          action: 'close tunnels',
          target: name,
          tunnels: closed,
          deadline: deadline.at,
        },
        'drain deadline passed: tunnels closed',
      );
    } catch (err) {
      this.options.logger.error({ err, target: name }, 'could not close the tunnels at the drain deadline');
    }
  }

  /**
   * Takes a state another instance stored. Nobody waits for this: a state the load balancer refuses
   * keeps the previous one, and a failure to apply is logged (the next change or resync tries again).
   */
  private async adopt(state: DesiredState): Promise<void> {
    try {
      await this.serial.run(async () => {
        const previous = this.desired;
        const next = reconcileState(this.config, state);
        // The store echoes this process's own writes too; by now they are applied.
        if (JSON.stringify(next) === JSON.stringify(previous)) return;
        await this.options.driver.check?.(next);
        this.setDesired(next);
        await this.options.driver.apply(next, previous);
        this.emit('change', this.state);
      });
    } catch (err) {
      this.options.logger.error({ err }, 'could not take the state another instance stored');
    }
  }

  private assertSite(site: string): void {
    if (!Object.hasOwn(this.config.sites, site))
      throw new TargetError(`unknown site "${site}"; sites: ${Object.keys(this.config.sites).join(', ')}`);
  }

  /** No change may leave a shared route with no live cluster that has a servable member. */
  private assertEverySiteServed(state: DesiredState, change: string): void {
    for (const [siteName, site] of Object.entries(this.config.sites)) {
      for (const route of site.routes) {
        const shared = routeTraffic(route) === 'shared';
        if (!shared) continue;
        const served = route.clusters.some((name) => {
          const cluster = state.clusters[name];
          if (!cluster || cluster.traffic !== 'live' || cluster.weight === 0) return false;
          return targetMembers(this.config, { kind: 'cluster', cluster: name }).some((key) => {
            const member = state.members[key];
            return (
              member !== undefined && member.admin !== 'disabled' && member.admin !== 'draining' && member.weight > 0
            );
          });
        });
        if (!served) {
          throw new RefusedError(
            `refusing to ${change}: site ${siteName} (${route.path}) would have no live cluster to send new sessions to; ` +
              `make another cluster live first, or use --force`,
          );
        }
      }
    }
  }
}
