// The release conductor: runs the plan's steps one after another as a state machine whose every
// transition is written to the store before it acts, so a crash (kill -9) leaves a journal that says
// exactly where to resume. One release at a time, guarded by a store lock. It changes traffic only
// through the ControlPlane, whose safety rules refuse any change that leaves a site with no live cluster.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { HookConfig, HookName } from '../config/release-schema.js';
import type { Actor, AuditLog } from '../control/audit.js';
import { drainOutcome } from '../control/drain-text.js';
import { RefusedError, type ControlPlane, type DrainProgress } from '../control/plane.js';
import type { StatsSampler } from '../control/sampler.js';
import { memberId } from '../control/state.js';
import { qaUrlOf } from '../control/status.js';
import { targetMembers, type Target } from '../control/targets.js';
import { LockHeldError, type StoreLock } from '../store/store.js';
import { runDbStep } from './database.js';
import { analyse, delay, healthGate, qaTargetFor, runQaChecks, StepFailure, type QaTarget } from './checks.js';
import { commandFailure, runCommand } from './hooks.js';
import { buildSteps, clusterPlan, releaseConfig } from './plan.js';
import { CURRENT_RELEASE_KEY, RELEASE_KEY_PREFIX, type Release, type ReleaseStep } from './types.js';
import { describeWindows, inWindow, nextWindowStart } from './window.js';
import { Serial } from '../serial.js';

/** A request the conductor turns down; nothing was changed. `status` is the HTTP status the API answers. */
export class ReleaseRefusedError extends Error {
  constructor(message: string, readonly status: 400 | 404 | 409 = 409) {
    super(message);
    this.name = 'ReleaseRefusedError';
  }
}

export interface ConductorOptions {
  plane: ControlPlane;
  logger: Logger;
  /** The proxy's figures, for canary analysis (absent with external drivers: canaries run unanalysed). */
  sampler?: StatsSampler;
  /** Where the proxy's http listener answers, e.g. http://127.0.0.1:8080 (QA checks connect there). */
  httpOrigin?: () => string | undefined;
  /** Where operators' release commands are recorded (traffic changes are recorded by the plane). */
  audit?: AuditLog;
  /** How often drains, gates and analysis look again. */
  pollMs?: number;
}

const LOCK_NAME = 'release';
const LOCK_TTL_SECONDS = 30;
const FINISHED = new Set(['succeeded', 'aborted']);
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;

export function isFinished(release: Release): boolean {
  return FINISHED.has(release.state);
}

export class Conductor extends EventEmitter<{ update: [Release] }> {
  private release: Release | undefined;
  private lock: StoreLock | undefined;
  private running: { controller: AbortController; done: Promise<void> } | undefined;
  /** Set by approve() while an approval step waits (or is about to). */
  private approvedBy: string | undefined;
  private wakeApproval: (() => void) | undefined;
  /** Serialises operator commands so that two never interleave. */
  private readonly serial = new Serial();
  private lastEmit = 0;
  private unwatch: (() => void) | undefined;

  private constructor(private readonly options: ConductorOptions) {
    super();
  }

  /** Opens the journal: a release that was running when the process died is marked interrupted. */
  static async open(options: ConductorOptions): Promise<Conductor> {
    const conductor = new Conductor(options);
    await conductor.recover();
    return conductor;
  }

  private get plane(): ControlPlane {
    return this.options.plane;
  }

  current(): Release | undefined {
    return this.release ? structuredClone(this.release) : undefined;
  }

  /** Every release in the journal, newest first. */
  async history(): Promise<Release[]> {
    const all = await this.plane.store.list<Release>(RELEASE_KEY_PREFIX);
    return all.map((v) => v.value).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  /** The steps a release of this config would run; changes nothing. */
  plan(version: string): ReleaseStep[] {
    this.checkVersion(version);
    return buildSteps(this.plane.config);
  }

  start(actor: Actor, version: string, options: { waitWindow?: boolean } = {}): Promise<Release> {
    return this.serial.run(async () => {
      this.checkVersion(version);
      if (this.release && !isFinished(this.release)) throw new ReleaseRefusedError(`${this.holderText(this.release)} is ${this.release.state}: resume, retry or abort it first`);
      const config = this.plane.config;
      const plan = releaseConfig(config);
      const outside = plan.windows !== undefined && !inWindow(plan.windows);
      if (outside && !options.waitWindow) {
        const next = nextWindowStart(plan.windows!);
        throw new ReleaseRefusedError(
          `outside the release windows ${describeWindows(plan.windows!)}${next ? `; the next one opens at ${next.toISOString()}` : ''}: start later, or pass --wait-window`,
        );
      }
      const steps = buildSteps(config, { waitWindow: outside });
      const now = new Date();
      const id = `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`;
      const previous = (await this.history()).find((r) => r.state === 'succeeded');
      const release: Release = {
        id,
        version,
        state: 'running',
        startedBy: actor.who,
        startedAt: now.toISOString(),
        before: Object.fromEntries(Object.entries(this.plane.state.clusters).map(([name, c]) => [name, { traffic: c.traffic, weight: c.weight }])),
        steps,
        current: 0,
        qaUrls: Object.fromEntries(Object.keys(config.clusters).flatMap((c) => (qaUrlOf(this.plane, c) ? [[c, qaUrlOf(this.plane, c)!]] : []))),
        ...(previous ? { previousVersion: previous.version } : {}),
      };
      await this.takeLock(release);
      this.release = release;
      await this.save();
      await this.plane.store.put(CURRENT_RELEASE_KEY, { id });
      await this.audit(actor, 'release start', release, { version });
      this.options.logger.info({ release: id, version, by: actor.who }, `release ${id} of version ${version} started`);
      this.launch();
      return structuredClone(release);
    });
  }

  approve(actor: Actor): Promise<Release> {
    return this.serial.run(async () => {
      const r = this.requireRelease();
      const step = r.steps[r.current];
      if (r.state !== 'awaiting-approval' || step?.kind !== 'approval') throw new ReleaseRefusedError(`nothing awaits approval: release ${r.id} is ${r.state}${step ? ` at "${step.title}"` : ''}`);
      if (!this.running) {
        // Run by another instance (refused, naming it), or by nobody since a failed recovery: carry on here.
        await this.takeLock(r);
        this.launch();
      }
      this.approvedBy = actor.who;
      await this.audit(actor, 'release approve', r, { step: step.id });
      this.wakeApproval?.();
      return structuredClone(r);
    });
  }

  /** Continues an interrupted release at the step it stopped in. */
  resume(actor: Actor, options: { yes?: boolean } = {}): Promise<Release> {
    return this.serial.run(async () => {
      const r = this.requireRelease();
      if ((r.state === 'running' || r.state === 'awaiting-approval') && !this.running) {
        // Run by another instance: refused, naming it, while that instance lives; once its lock has
        // lapsed, the release is interrupted and this instance carries it on.
        await this.takeLock(r);
        r.state = 'interrupted';
        await this.save();
      }
      if (r.state !== 'interrupted') throw new ReleaseRefusedError(`release ${r.id} is ${r.state}, not interrupted${r.state === 'failed' ? ': use retry to re-run the failed step' : ''}`);
      const step = r.steps[r.current];
      if (step && step.state === 'running' && !step.repeatable && !options.yes) {
        throw new ReleaseRefusedError(
          `step "${step.title}" was interrupted and is not safe to repeat: check what it did, then resume with --yes to run it again, or abort`,
        );
      }
      await this.takeLock(r);
      if (step && step.state !== 'succeeded' && step.state !== 'skipped') this.resetStep(step);
      delete r.reason;
      await this.audit(actor, 'release resume', r, { step: step?.id, yes: Boolean(options.yes) });
      this.options.logger.info({ release: r.id, by: actor.who, step: step?.id }, 'release resumed');
      this.launch();
      return structuredClone(r);
    });
  }

  /** Re-runs the failed step. */
  retry(actor: Actor): Promise<Release> {
    return this.serial.run(async () => {
      const r = this.requireRelease();
      if (r.state !== 'failed') throw new ReleaseRefusedError(`release ${r.id} is ${r.state}, not failed${r.state === 'interrupted' ? ': use resume' : ''}`);
      await this.takeLock(r);
      this.resetStep(r.steps[r.current]!);
      delete r.reason;
      delete r.canary;
      await this.audit(actor, 'release retry', r, { step: r.steps[r.current]?.id });
      this.options.logger.info({ release: r.id, by: actor.who, step: r.steps[r.current]?.id }, 'release step retried');
      this.launch();
      return structuredClone(r);
    });
  }

  /**
   * Stops the release and returns traffic to the clusters live before it, with their weights; runs the
   * rollback hook for every cluster the release deployed to first.
   */
  abort(actor: Actor): Promise<Release> {
    return this.serial.run(async () => {
      const r = this.requireRelease();
      if (isFinished(r)) throw new ReleaseRefusedError(`release ${r.id} is already ${r.state}`);
      await this.stopLoop();
      await this.takeLock(r);
      await this.audit(actor, 'release abort', r, { step: r.steps[r.current]?.id });
      r.abortedBy = actor.who;
      const step = r.steps[r.current];
      if (step && (step.state === 'running' || step.state === 'waiting')) {
        step.state = 'failed';
        step.endedAt = new Date().toISOString();
        step.detail = `stopped: aborted by ${actor.who}`;
      }
      r.reason = `aborting (by ${actor.who})`;
      delete r.drain;
      await this.save();
      const notes = await this.rollBack(r);
      r.state = 'aborted';
      r.endedAt = new Date().toISOString();
      r.reason = [`aborted by ${actor.who}`, ...notes].join('; ');
      await this.save();
      await this.dropLock();
      this.options.logger.warn({ release: r.id, by: actor.who }, `release ${r.id} aborted`);
      return structuredClone(r);
    });
  }

  /** Stops the running step (the journal says interrupted) and gives the lock up. */
  async close(): Promise<void> {
    this.unwatch?.();
    await this.serial.run(async () => {
      const r = this.release;
      const wasRunning = r?.state === 'running';
      await this.stopLoop();
      if (r && wasRunning) {
        r.state = 'interrupted';
        r.reason = `Dayshift stopped during "${r.steps[r.current]?.title}": resume or abort`;
        await this.save();
      }
      await this.dropLock();
    });
  }

  // --- the state machine -------------------------------------------------------------------------

  private async recover(): Promise<void> {
    const r = await this.readCurrent();
    // Another Dayshift instance sharing the store may run releases: follow its journal.
    this.unwatch = this.plane.store.watch('release', () => void this.follow());
    if (!r) return;
    this.release = r;
    if (r.state !== 'running' && r.state !== 'awaiting-approval') return;
    try {
      await this.takeLock(r);
    } catch (err) {
      if (!(err instanceof ReleaseRefusedError)) throw err;
      // A live instance holds the lock: the release is its to run.
      this.options.logger.info({ release: r.id }, `release ${r.id} is run by another instance: ${err.message}`);
      return;
    }
    if (r.state === 'running') {
      r.state = 'interrupted';
      r.reason = `the conductor stopped during "${r.steps[r.current]?.title}" (crash or restart): resume or abort`;
      delete r.drain;
      await this.save();
      await this.dropLock();
      this.options.logger.warn({ release: r.id }, `release ${r.id} was interrupted: \`dayshift release resume\` or \`dayshift release abort\``);
    } else {
      // Waiting for approval acts on nothing: carry on waiting.
      this.launch();
    }
  }

  private async readCurrent(): Promise<Release | undefined> {
    const pointer = await this.plane.store.get<{ id: string }>(CURRENT_RELEASE_KEY);
    if (!pointer) return undefined;
    return (await this.plane.store.get<Release>(`${RELEASE_KEY_PREFIX}${pointer.value.id}`))?.value;
  }

  /** Adopts the journal as another instance writes it, while this one runs nothing. */
  private async follow(): Promise<void> {
    if (this.lock) return;
    const r = await this.readCurrent().catch(() => undefined);
    if (!r || this.lock || JSON.stringify(r) === JSON.stringify(this.release)) return;
    this.release = r;
    this.emit('update', structuredClone(r));
  }

  private launch(): void {
    const controller = new AbortController();
    const done = this.loop(controller.signal)
      .catch((err: unknown) => this.options.logger.error({ err }, 'release conductor error'))
      .finally(() => {
        if (this.running?.controller === controller) this.running = undefined;
      });
    this.running = { controller, done };
  }

  private async stopLoop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    running.controller.abort(new Error('release stopped'));
    await running.done;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const r = this.release!;
    while (r.current < r.steps.length) {
      const step = r.steps[r.current]!;
      if (step.state === 'succeeded' || step.state === 'skipped') {
        r.current++;
        continue;
      }
      // A lease that lapsed while the store was out of reach lets another instance take the release:
      // acting on without the lock could run a step twice at once.
      if ((await this.lock?.held?.()) === false) return this.lockLost(r, step);
      if (step.kind === 'approval') {
        step.state = 'waiting';
        r.state = 'awaiting-approval';
      } else {
        step.state = 'running';
        r.state = 'running';
        this.approvedBy = undefined;
      }
      if (step.kind !== 'approval' || !step.startedAt) step.startedAt = new Date().toISOString();
      // Written before it acts: after a crash the journal names this step as the interrupted one.
      await this.save();
      let outcome: { detail: string; skipped?: boolean };
      try {
        await this.plane.verifyDriver(); // a load balancer restarted since the last step gets its state back first
        outcome = await this.execute(r, step, signal);
      } catch (err) {
        if (signal.aborted) return;
        step.state = 'failed';
        step.endedAt = new Date().toISOString();
        step.detail = (err as Error).message;
        if (err instanceof StepFailure && err.output) step.output = err.output.slice(-50);
        r.state = 'failed';
        r.reason = `${step.title}: ${step.detail}`;
        delete r.drain;
        await this.save();
        this.options.logger.error({ release: r.id, step: step.id }, `release step failed: ${step.detail}`);
        return;
      }
      if (signal.aborted) return;
      step.state = outcome.skipped ? 'skipped' : 'succeeded';
      step.endedAt = new Date().toISOString();
      step.detail = outcome.detail;
      delete r.drain;
      r.current++;
      r.state = 'running';
      await this.save();
      this.options.logger.info({ release: r.id, step: step.id }, `${step.title}: ${outcome.detail}`);
    }
    r.state = 'succeeded';
    r.endedAt = new Date().toISOString();
    delete r.canary;
    await this.save();
    await this.dropLock();
    this.options.logger.info({ release: r.id, version: r.version }, `release ${r.id} of version ${r.version} succeeded`);
  }

  private async lockLost(r: Release, step: ReleaseStep): Promise<void> {
    r.state = 'interrupted';
    r.reason = `the release lock was lost (its lease lapsed) before "${step.title}": resume or abort`;
    delete r.drain;
    await this.save();
    await this.audit(this.actor(r), 'release interrupted', r, { step: step.id, reason: 'release lock lost' });
    await this.dropLock();
    this.options.logger.warn({ release: r.id, step: step.id }, `release ${r.id} stopped: ${r.reason}`);
  }

  private async execute(r: Release, step: ReleaseStep, signal: AbortSignal): Promise<{ detail: string; skipped?: boolean }> {
    const cluster = step.cluster;
    switch (step.kind) {
      case 'window':
        return this.waitWindow(signal);
      case 'hook':
        return { detail: await this.runHookStep(r, step, step.hook!, cluster, signal) };
      case 'drain':
        return this.drain(r, cluster!, signal);
      case 'out': {
        if (this.plane.state.clusters[cluster!]?.traffic === 'out') return { detail: 'already out' };
        await this.change(() => this.plane.setTraffic(this.actor(r), cluster!, 'out'));
        return { detail: `${cluster} is out of public traffic; its QA site still reaches it` };
      }
      case 'health-gate': {
        const health = releaseConfig(this.plane.config).health;
        return { detail: await healthGate(this.plane, cluster!, { timeoutMs: health.timeout, stableMs: Math.min(health.stable, health.timeout), signal, pollMs: this.pollMs(250) }) };
      }
      case 'qa-checks': {
        const output: string[] = [];
        step.output = output;
        await runQaChecks(clusterPlan(this.plane.config, cluster!).qa, {
          target: this.qaTarget(cluster!),
          cwd: this.plane.loaded.baseDir,
          env: this.env(r, cluster),
          signal,
          onLine: (line) => this.captured(step, output, line),
        });
        return { detail: `${output.filter((l) => l.startsWith('GET ') || l.startsWith('$ ')).length} check(s) passed` };
      }
      case 'approval':
        return this.awaitApproval(step, signal);
      case 'shift':
        return this.shift(r, cluster!, signal);
      case 'db-check-replication':
      case 'db-switchover':
      case 'db-migrate': {
        const output: string[] = [];
        step.output = output;
        return runDbStep(releaseConfig(this.plane.config).database[step.dbStep!]!, {
          loaded: this.plane.loaded,
          store: this.plane.store,
          env: this.env(r, undefined),
          signal,
          onLine: (line) => this.captured(step, output, line),
          ...(step.dbTarget ? { target: step.dbTarget } : {}),
          recordTarget: async (target) => {
            step.dbTarget = target;
            await this.save();
          },
        });
      }
      default:
        throw new StepFailure(`the conductor cannot run ${step.kind} steps`);
    }
  }

  private async waitWindow(signal: AbortSignal): Promise<{ detail: string }> {
    for (;;) {
      const windows = releaseConfig(this.plane.config).windows;
      if (!windows || inWindow(windows)) return { detail: 'inside the release window' };
      const next = nextWindowStart(windows);
      await delay(Math.min(60_000, next ? Math.max(1000, next.getTime() - Date.now()) : 60_000), signal);
    }
  }

  private async drain(r: Release, cluster: string, signal: AbortSignal): Promise<{ detail: string; skipped?: boolean }> {
    const current = this.plane.state.clusters[cluster]!;
    if (current.traffic === 'out') return { detail: `${cluster} was already out of public traffic`, skipped: true };
    const plan = clusterPlan(this.plane.config, cluster);
    // The release owns its drain and the plan's deadline (tunnels left then are closed in its name), also
    // when an operator drained the cluster before it; after a restart it already does.
    const actor = this.actor(r);
    if (current.traffic === 'live' || current.drainDeadline?.who !== actor.who) {
      // Taking over a drain changes only its deadline: the safety rules were applied when it started.
      const takeOver = current.traffic === 'draining';
      await this.change(() => this.plane.setTraffic(actor, cluster, 'draining', { deadlineMs: plan.drainDeadlineMs, force: takeOver }));
    }
    const target = clusterTarget(cluster);
    const onProgress = (p: DrainProgress) => {
      r.drain = p;
      this.emitThrottled();
    };
    const final = await this.plane.waitDrained(target, { idleMs: plan.drainIdleMs, signal, onProgress, pollMs: this.pollMs(250) });
    return { detail: drainOutcome(final) };
  }

  private async awaitApproval(step: ReleaseStep, signal: AbortSignal): Promise<{ detail: string }> {
    const approval = clusterPlan(this.plane.config, step.cluster!).approval;
    if (approval.mode === 'auto' && approval.afterMs === 0) return { detail: 'approved automatically' };
    if (approval.mode === 'auto') {
      const at = Date.parse(step.startedAt!) + approval.afterMs;
      if (step.approvesAt !== new Date(at).toISOString()) {
        step.approvesAt = new Date(at).toISOString();
        await this.save();
      }
    }
    while (this.approvedBy === undefined) {
      const wait = approval.mode === 'auto' ? Date.parse(step.approvesAt!) - Date.now() : 3_600_000;
      if (wait <= 0) return { detail: 'approved automatically when the approval time came' };
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, Math.min(wait, 3_600_000));
        const onAbort = () => {
          clearTimeout(timer);
          this.wakeApproval = undefined;
          reject(signal.reason);
        };
        function done() {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }
        this.wakeApproval = () => {
          clearTimeout(timer);
          this.wakeApproval = undefined;
          done();
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    step.approvedBy = this.approvedBy;
    this.approvedBy = undefined;
    return { detail: `approved by ${step.approvedBy}` };
  }

  private async shift(r: Release, cluster: string, signal: AbortSignal): Promise<{ detail: string; skipped?: boolean }> {
    const before = r.before[cluster];
    if (!before || before.traffic !== 'live') return { detail: `${cluster} was ${before?.traffic ?? 'unknown'} before the release: left out`, skipped: true };
    const weight = before.weight > 0 ? before.weight : 1;
    const shift = clusterPlan(this.plane.config, cluster).shift;
    const actor = this.actor(r);
    if (shift.mode === 'swap') {
      await this.change(() => this.plane.setTraffic(actor, cluster, 'live', { weight }));
      return { detail: `${cluster} is live (weight ${weight})` };
    }
    const others = Object.entries(this.plane.state.clusters)
      .filter(([name, c]) => name !== cluster && c.traffic === 'live')
      .map(([name]) => ({ name, weight: r.before[name]?.weight ?? 1 }));
    const otherTotal = others.reduce((n, o) => n + o.weight, 0);
    const restoreOthers = async () => {
      for (const o of others) if (this.plane.state.clusters[o.name]?.weight !== o.weight) await this.change(() => this.plane.setClusterWeight(actor, o.name, o.weight));
    };
    const releasedMembers = targetMembers(this.plane.config, clusterTarget(cluster));
    const baselineMembers = others.flatMap((o) => targetMembers(this.plane.config, clusterTarget(o.name)));
    const analysis = shift.analysis;
    const sampler = this.options.sampler;
    const started = Date.now();
    for (const s of shift.steps) {
      if (others.length > 0 && s.percent < 100) {
        await this.change(() => this.plane.setTraffic(actor, cluster, 'live', { weight: s.percent }));
        for (const o of others) {
          const w = Math.max(1, Math.round(((100 - s.percent) * o.weight) / otherTotal));
          await this.change(() => this.plane.setClusterWeight(actor, o.name, w));
        }
      } else {
        await this.change(() => this.plane.setTraffic(actor, cluster, 'live', { weight }));
        await restoreOthers();
      }
      r.canary = { cluster, percent: s.percent, released: { requestsPerSecond: 0, errorRate: 0 }, baseline: { requestsPerSecond: 0, errorRate: 0 } };
      await this.save();
      const holdUntil = Date.now() + s.pause;
      while (Date.now() < holdUntil) {
        await delay(Math.min(this.pollMs(1000), Math.max(0, holdUntil - Date.now())), signal);
        if (!sampler) continue;
        const windowSeconds = Math.max(1, Math.min(Math.round(analysis.window / 1000), Math.floor((Date.now() - started) / 1000)));
        const released = sampler.rates(releasedMembers, windowSeconds);
        const baseline = sampler.rates(baselineMembers, windowSeconds);
        r.canary = { cluster, percent: s.percent, released: figures(released), baseline: figures(baseline) };
        const breach = analyse(released, baseline, windowSeconds, analysis);
        if (breach) {
          r.canary.breach = breach;
          // Roll back: the other clusters get their weights back first, so a live cluster always serves.
          await restoreOthers();
          await this.change(() => this.plane.setTraffic(actor, cluster, 'out'));
          throw new StepFailure(`canary analysis at ${s.percent}%: ${breach}; traffic rolled back (${cluster} is out again)`);
        }
        this.emitThrottled();
      }
    }
    await this.change(() => this.plane.setTraffic(actor, cluster, 'live', { weight }));
    await restoreOthers();
    return { detail: `${cluster} is live (weight ${weight}) after ${shift.steps.map((s) => `${s.percent}%`).join(', ')}${sampler ? ', analysis passed' : ' (no proxy figures: not analysed)'}` };
  }

  /**
   * Runs the rollback hook for each cluster the release deployed to that is not live, then restores the
   * traffic states recorded in `before`. A deployed cluster whose rollback failed, or that has no
   * rollback hook, stays out: it may run the new version. A deployed cluster that is live already
   * passed its gates and keeps serving (rolling it back would cut its users). Returns notes.
   */
  private async rollBack(r: Release): Promise<string[]> {
    const notes: string[] = [];
    const plan = releaseConfig(this.plane.config);
    const touched = [...new Set(r.steps.filter((s) => s.kind === 'hook' && s.cluster && s.startedAt && s.hook !== 'rollback').map((s) => s.cluster!))];
    const live = touched.filter((c) => this.plane.state.clusters[c]?.traffic === 'live');
    const offline = touched.filter((c) => !live.includes(c));
    for (const c of live) notes.push(`${c} is live with version ${r.version} (it passed its gates) and keeps serving`);
    const keepOut = new Set<string>();
    if (!plan.hooks.rollback) {
      for (const c of offline) {
        keepOut.add(c);
        notes.push(`no rollback hook: ${c} was deployed to and stays out; make it live yourself once it runs the old version`);
      }
    } else if (offline.length === 0) {
      notes.push('no cluster out of traffic was deployed to: no rollback hook needed');
    }
    for (const cluster of plan.hooks.rollback ? offline.reverse() : []) {
      const hook = plan.hooks.rollback!;
      const step: ReleaseStep = { id: `${cluster}:rollback`, kind: 'hook', hook: 'rollback', cluster, title: `rollback ${cluster}: ${hook.title ?? hook.run}`, state: 'running', repeatable: hook.repeatable, startedAt: new Date().toISOString() };
      r.steps = r.steps.filter((s) => s.id !== step.id);
      r.steps.push(step);
      await this.save();
      try {
        step.detail = await this.runHookStep(r, step, 'rollback', cluster);
        step.state = 'succeeded';
      } catch (err) {
        step.state = 'failed';
        step.detail = (err as Error).message;
        if (err instanceof StepFailure && err.output) step.output = err.output.slice(-50);
        keepOut.add(cluster);
        notes.push(`rollback hook failed for ${cluster} (${step.detail}): it stays out of traffic`);
      }
      step.endedAt = new Date().toISOString();
      await this.save();
    }
    const actor = this.actor(r);
    const entries = Object.entries(r.before);
    // Clusters live before go live first, so that the others can then be taken out safely.
    for (const [cluster, was] of entries.filter(([, b]) => b.traffic === 'live')) {
      if (keepOut.has(cluster)) continue;
      const now = this.plane.state.clusters[cluster];
      if (now && now.traffic === 'live' && now.weight === was.weight) continue;
      try {
        await this.change(() => this.plane.setTraffic(actor, cluster, 'live', { weight: was.weight }));
      } catch (err) {
        notes.push(`could not make ${cluster} live again: ${(err as Error).message}`);
      }
    }
    for (const [cluster, was] of entries.filter(([, b]) => b.traffic !== 'live')) {
      if (this.plane.state.clusters[cluster]?.traffic === was.traffic) continue;
      try {
        await this.change(() => this.plane.setTraffic(actor, cluster, was.traffic as 'draining' | 'out', { weight: was.weight }));
      } catch (err) {
        notes.push(`left ${cluster} as it is: ${(err as Error).message}`);
      }
    }
    delete r.canary;
    notes.push(`traffic restored: ${entries.map(([c]) => `${c} ${this.plane.state.clusters[c]?.traffic}`).join(', ')}`);
    return notes;
  }

  private async runHookStep(r: Release, step: ReleaseStep, name: HookName, cluster: string | undefined, signal?: AbortSignal): Promise<string> {
    const plan = releaseConfig(this.plane.config);
    const hook: HookConfig | undefined = cluster && (name === 'stop' || name === 'deploy' || name === 'start') ? clusterPlan(this.plane.config, cluster).hooks[name] : plan.hooks[name];
    if (!hook) return 'no hook configured';
    const output: string[] = [];
    step.output = output;
    const runs: { env: Record<string, string>; label: string }[] = [];
    const base = this.env(r, cluster);
    if (hook.per === 'member' && cluster) {
      const members = this.plane.config.clusters[cluster]!.members;
      members.forEach((m, i) => {
        const id = memberId(m.route, i);
        runs.push({ env: { ...base, DAYSHIFT_MEMBER: id, DAYSHIFT_MEMBER_URL: m.url }, label: `${cluster}/${id}` });
      });
    } else {
      runs.push({ env: base, label: cluster ?? 'release' });
    }
    for (const run of runs) {
      if (runs.length > 1) this.captured(step, output, `[${run.label}] $ ${hook.run}`);
      const result = await runCommand(hook.run, {
        cwd: this.plane.loaded.baseDir,
        env: run.env,
        timeoutMs: hook.timeout,
        ...(signal ? { signal } : {}),
        onLine: (line) => {
          this.captured(step, output, line);
          this.options.logger.info({ release: r.id, step: step.id, member: run.label }, `hook ${name}: ${line}`);
        },
      });
      const failure = commandFailure(`hook ${name}${runs.length > 1 ? ` for ${run.label}` : ''}`, result, hook.timeout);
      if (failure) throw new StepFailure(failure, output);
    }
    return runs.length > 1 ? `ran for ${runs.length} members` : 'exited with 0';
  }

  private env(r: Release, cluster: string | undefined): Record<string, string> {
    const env: Record<string, string> = { DAYSHIFT_VERSION: r.version, DAYSHIFT_RELEASE: r.id };
    if (r.previousVersion) env.DAYSHIFT_PREVIOUS_VERSION = r.previousVersion;
    if (cluster) {
      env.DAYSHIFT_CLUSTER = cluster;
      const qa = qaUrlOf(this.plane, cluster);
      if (qa) env.DAYSHIFT_QA_URL = qa;
    }
    return env;
  }

  private qaTarget(cluster: string): QaTarget {
    return qaTargetFor(this.plane.config, cluster, this.options.httpOrigin?.());
  }

  private captured(step: ReleaseStep, output: string[], line: string): void {
    output.push(line);
    if (output.length > 50) output.shift();
    step.output = output;
    this.emitThrottled();
  }

  private async change(work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (err instanceof RefusedError) throw new StepFailure(err.message);
      throw err;
    }
  }

  private resetStep(step: ReleaseStep): void {
    step.state = 'pending';
    delete step.endedAt;
    delete step.detail;
    delete step.output;
    delete step.approvesAt;
    if (step.kind !== 'approval') delete step.startedAt;
  }

  private async audit(actor: Actor, action: string, r: Release, detail: Record<string, unknown>): Promise<void> {
    await this.options.audit?.record(actor, action, `release ${r.id}`, detail);
  }

  private actor(r: Release): Actor {
    return { who: `release:${r.id}`, from: 'conductor' };
  }

  private holderText(r: Release): string {
    return `release ${r.id} (version ${r.version}, started by ${r.startedBy} at ${r.startedAt})`;
  }

  private async takeLock(r: Release): Promise<void> {
    if (this.lock) return;
    try {
      this.lock = await this.plane.store.lock(LOCK_NAME, this.holderText(r), LOCK_TTL_SECONDS);
    } catch (err) {
      if (err instanceof LockHeldError) throw new ReleaseRefusedError(`another release is running: the release lock is held by ${err.holder}`);
      throw err;
    }
  }

  private async dropLock(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release();
  }

  private requireRelease(): Release {
    if (!this.release) throw new ReleaseRefusedError('there is no release: start one with `dayshift release start --version V`', 404);
    return this.release;
  }

  private checkVersion(version: string): void {
    if (!VERSION.test(version)) throw new ReleaseRefusedError(`"${version}" is not a version: use letters, digits, ".", "_", "+" and "-" (at most 100)`, 400);
  }

  private pollMs(normal: number): number {
    return this.options.pollMs ?? normal;
  }

  private async save(): Promise<void> {
    const r = this.release!;
    await this.plane.store.put(`${RELEASE_KEY_PREFIX}${r.id}`, r);
    this.lastEmit = Date.now();
    this.emit('update', structuredClone(r));
  }

  /** Live progress (drain figures, hook output) goes to watchers at most a few times a second, unsaved. */
  private emitThrottled(): void {
    const now = Date.now();
    if (now - this.lastEmit < 200 || !this.release) return;
    this.lastEmit = now;
    this.emit('update', structuredClone(this.release));
  }
}

function clusterTarget(cluster: string): Target {
  return { kind: 'cluster', cluster };
}

function figures(rates: { requestsPerSecond: number; errorRate: number; p99Ms: number | undefined }): { requestsPerSecond: number; errorRate: number; p99Ms?: number } {
  return { requestsPerSecond: rates.requestsPerSecond, errorRate: rates.errorRate, ...(rates.p99Ms !== undefined ? { p99Ms: rates.p99Ms } : {}) };
}
