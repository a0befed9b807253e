// The release conductor: runs the plan's steps one after another as a state machine whose every
// transition is written to the store before it acts, so a crash (kill -9) leaves a journal that says
// exactly where to resume. One release at a time, guarded by a store lock. It changes traffic only
// through the ControlPlane, whose safety rules refuse any change that leaves a site with no live cluster.
// Here: the operator commands and the step loop; each step kind's body is in steps/, an abort's rollback
// in rollback.ts.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Actor, AuditLog } from '../control/audit.js';
import type { ControlPlane } from '../control/plane.js';
import type { StatsSampler } from '../observe/sampler.js';
import { qaUrlOf } from '../observe/status-report.js';
import type { StoreLock } from '../store/store.js';
import { LockHeldError } from '../store/errors.js';
import { Serial } from '../serial.js';
import { ReleaseRefusedError } from './errors.js';
import { buildSteps, releaseConfig } from './plan.js';
import { rollBack } from './rollback.js';
import { ApprovalGate } from './steps/approval.js';
import { runStepBody } from './steps/runners.js';
import { releaseActor, settle, type StepContext } from './steps/step.js';
import { CURRENT_RELEASE_KEY, RELEASE_KEY_PREFIX, type Release, type ReleaseStep } from './types.js';
import { describeWindows, inWindow, nextWindowStart } from './window.js';

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
  /**
   * A new generation started by `dayshift upgrade`: a release handed over is carried on only once it
   * serves (takeOver), so that if it fails to start the previous generation can take the release back.
   */
  deferTakeOver?: boolean;
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
  /** Carries approve() to the approval step that waits (or is about to). */
  private readonly approvals = new ApprovalGate();
  /** Serialises operator commands so that two never interleave. */
  private readonly serial = new Serial();
  private lastEmit = 0;
  private unwatch: (() => void) | undefined;
  /** Set from handOver() until takeOver(): no step starts and no command is taken. */
  private handingOver = false;

  private constructor(private readonly options: ConductorOptions) {
    super();
  }

  /**
   * Opens the journal: a release that was running when the process died is marked interrupted.
   * `subscribe` is called before that, so that its listeners see the update.
   */
  static async open(options: ConductorOptions, subscribe?: (conductor: Conductor) => void): Promise<Conductor> {
    const conductor = new Conductor(options);
    subscribe?.(conductor);
    await conductor.recover();
    return conductor;
  }

  private get plane(): ControlPlane {
    return this.options.plane;
  }

  /** Whether this instance runs the release (holds the release lock); the others follow its journal. */
  get runsRelease(): boolean {
    return this.lock !== undefined;
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
      this.refuseWhileHandingOver();
      this.checkVersion(version);
      if (this.release && !isFinished(this.release))
        throw new ReleaseRefusedError(
          `${this.holderText(this.release)} is ${this.release.state}: resume, retry or abort it first`,
        );
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
      const id = `${now
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`;
      const previous = (await this.history()).find((r) => r.state === 'succeeded');
      const release: Release = {
        id,
        version,
        state: 'running',
        startedBy: actor.who,
        startedAt: now.toISOString(),
        before: Object.fromEntries(
          Object.entries(this.plane.state.clusters).map(([name, c]) => [
            name,
            { traffic: c.traffic, weight: c.weight },
          ]),
        ),
        steps,
        current: 0,
        qaUrls: Object.fromEntries(
          Object.keys(config.clusters).flatMap((c) => (qaUrlOf(this.plane, c) ? [[c, qaUrlOf(this.plane, c)!]] : [])),
        ),
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
      this.refuseWhileHandingOver();
      const r = this.requireRelease();
      const step = r.steps[r.current];
      if (r.state !== 'awaiting-approval' || step?.kind !== 'approval')
        throw new ReleaseRefusedError(
          `nothing awaits approval: release ${r.id} is ${r.state}${step ? ` at "${step.title}"` : ''}`,
        );
      if (!this.running) {
        // Run by another instance (refused, naming it), or by nobody since a failed recovery: carry on here.
        await this.takeLock(r);
        this.launch();
      }
      this.approvals.approve(actor.who);
      await this.audit(actor, 'release approve', r, { step: step.id });
      this.approvals.wake();
      return structuredClone(r);
    });
  }

  /** Continues an interrupted release at the step it stopped in. */
  resume(actor: Actor, options: { yes?: boolean } = {}): Promise<Release> {
    return this.serial.run(async () => {
      this.refuseWhileHandingOver();
      const r = this.requireRelease();
      if ((r.state === 'running' || r.state === 'awaiting-approval') && !this.running) {
        // Run by another instance: refused, naming it, while that instance lives; once its lock has
        // lapsed, the release is interrupted and this instance carries it on.
        await this.takeLock(r);
        r.state = 'interrupted';
        await this.save();
      }
      if (r.state !== 'interrupted')
        throw new ReleaseRefusedError(
          `release ${r.id} is ${r.state}, not interrupted${r.state === 'failed' ? ': use retry to re-run the failed step' : ''}`,
        );
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
      this.refuseWhileHandingOver();
      const r = this.requireRelease();
      if (r.state !== 'failed')
        throw new ReleaseRefusedError(
          `release ${r.id} is ${r.state}, not failed${r.state === 'interrupted' ? ': use resume' : ''}`,
        );
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
      this.refuseWhileHandingOver();
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
      const notes = await rollBack(this.context(r));
      r.state = 'aborted';
      r.endedAt = new Date().toISOString();
      r.reason = [`aborted by ${actor.who}`, ...notes].join('; ');
      await this.save();
      await this.dropLock();
      this.options.logger.warn({ release: r.id, by: actor.who }, `release ${r.id} aborted`);
      return structuredClone(r);
    });
  }

  /**
   * Hands the release this instance runs to the next Dayshift generation (`dayshift upgrade`): no further
   * step starts, the current one is stopped (it must be safe to repeat: refused otherwise), the journal
   * says handed over and the lock is given up. From then on this instance writes nothing to the journal:
   * the next generation carries the release on (takeOver), or this one does again if the next one fails.
   */
  handOver(): Promise<Release | undefined> {
    this.handingOver = true;
    return this.serial.run(async () => {
      const r = this.release;
      const step = r?.steps[r.current];
      if (r && this.lock && step?.state === 'running' && !step.repeatable) {
        this.handingOver = false;
        throw new ReleaseRefusedError(
          `release ${r.id} is running "${step.title}", which is not safe to repeat: upgrade once it is done`,
        );
      }
      this.unwatch?.();
      this.unwatch = undefined;
      // Run here: this instance holds the lock of a release under way (the loop may just have stopped).
      const runs =
        r !== undefined && this.lock !== undefined && (r.state === 'running' || r.state === 'awaiting-approval');
      await this.stopLoop();
      if (r && runs) {
        r.handedOver = { at: new Date().toISOString(), from: process.pid };
        delete r.drain;
        await this.save();
        this.options.logger.info({ release: r.id }, `release ${r.id} handed over to the next Dayshift generation`);
      }
      await this.dropLock();
      return runs ? structuredClone(r) : undefined;
    });
  }

  /**
   * Carries on a release a previous generation handed over (or that this one handed to a next generation
   * that failed to start): the step it stopped in runs again.
   */
  takeOver(): Promise<Release | undefined> {
    return this.serial.run(async () => {
      this.handingOver = false;
      this.watchJournal();
      const r = await this.readCurrent();
      if (!r?.handedOver) return undefined;
      this.release = r;
      try {
        await this.takeLock(r);
      } catch (err) {
        if (!(err instanceof ReleaseRefusedError)) throw err;
        this.options.logger.info(
          { release: r.id },
          `release ${r.id} is carried on by another instance: ${err.message}`,
        );
        return undefined;
      }
      delete r.handedOver;
      const step = r.steps[r.current];
      if (step && step.state !== 'succeeded' && step.state !== 'skipped') this.resetStep(step);
      await this.save();
      this.options.logger.info({ release: r.id, step: step?.id }, `release ${r.id} carried on here`);
      this.launch();
      return structuredClone(r);
    });
  }

  /** Stops the running step (the journal says interrupted) and gives the lock up. */
  async close(): Promise<void> {
    this.unwatch?.();
    await this.serial.run(async () => {
      const r = this.release;
      // A release handed over is no longer this instance's to write.
      const wasRunning = r?.state === 'running' && !r.handedOver;
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
    this.watchJournal();
    if (!r) return;
    this.release = r;
    if (r.handedOver) {
      if (this.options.deferTakeOver) this.handingOver = true;
      else await this.takeOver();
      return;
    }
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
      this.options.logger.warn(
        { release: r.id },
        `release ${r.id} was interrupted: \`dayshift release resume\` or \`dayshift release abort\``,
      );
    } else {
      // Waiting for approval acts on nothing: carry on waiting.
      this.launch();
    }
  }

  /** Another Dayshift instance sharing the store may run releases: follow its journal. */
  private watchJournal(): void {
    this.unwatch ??= this.plane.store.watch('release', () => void this.follow());
  }

  private refuseWhileHandingOver(): void {
    if (this.handingOver)
      throw new ReleaseRefusedError(
        'Dayshift is being upgraded: the release passes to the new generation; retry in a moment',
      );
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
      // Handing over to the next generation (handOver): no step starts here any more.
      if (this.handingOver) return;
      if (step.kind === 'approval') {
        step.state = 'waiting';
        r.state = 'awaiting-approval';
      } else {
        step.state = 'running';
        r.state = 'running';
        this.approvals.clear();
      }
      if (step.kind !== 'approval' || !step.startedAt) step.startedAt = new Date().toISOString();
      // Written before it acts: after a crash the journal names this step as the interrupted one.
      await this.save();
      const ok = await settle(
        step,
        async () => {
          await this.plane.verifyDriver(); // a load balancer restarted since the last step gets its state back first
          return runStepBody(step, this.context(r, signal));
        },
        signal,
      );
      if (signal.aborted) return;
      if (!ok) {
        r.state = 'failed';
        r.reason = `${step.title}: ${step.detail}`;
        delete r.drain;
        await this.save();
        this.options.logger.error({ release: r.id, step: step.id }, `release step failed: ${step.detail}`);
        return;
      }
      delete r.drain;
      r.current++;
      r.state = 'running';
      await this.save();
      this.options.logger.info({ release: r.id, step: step.id }, `${step.title}: ${step.detail}`);
    }
    r.state = 'succeeded';
    r.endedAt = new Date().toISOString();
    delete r.canary;
    await this.save();
    await this.dropLock();
    this.options.logger.info(
      { release: r.id, version: r.version },
      `release ${r.id} of version ${r.version} succeeded`,
    );
  }

  private async lockLost(r: Release, step: ReleaseStep): Promise<void> {
    r.state = 'interrupted';
    r.reason = `the release lock was lost (its lease lapsed) before "${step.title}": resume or abort`;
    delete r.drain;
    await this.save();
    await this.audit(releaseActor(r), 'release interrupted', r, { step: step.id, reason: 'release lock lost' });
    await this.dropLock();
    this.options.logger.warn({ release: r.id, step: step.id }, `release ${r.id} stopped: ${r.reason}`);
  }

  /** What a step (or the rollback) gets to act with. */
  private context(r: Release, signal?: AbortSignal): StepContext {
    const { plane, logger, sampler, httpOrigin } = this.options;
    return {
      plane,
      release: r,
      logger,
      sampler,
      httpOrigin,
      approvals: this.approvals,
      signal,
      save: () => this.save(),
      progress: () => this.emitThrottled(),
      pollMs: (normal) => this.pollMs(normal),
    };
  }

  private resetStep(step: ReleaseStep): void {
    step.state = 'pending';
    delete step.endedAt;
    delete step.detail;
    delete step.output;
    // An approval keeps its first start: the automatic approval time counts from it.
    if (step.kind === 'approval') delete step.approvesAt;
    else delete step.startedAt;
  }

  private async audit(actor: Actor, action: string, r: Release, detail: Record<string, unknown>): Promise<void> {
    await this.options.audit?.record(actor, action, `release ${r.id}`, detail);
  }

  private holderText(r: Release): string {
    return `release ${r.id} (version ${r.version}, started by ${r.startedBy} at ${r.startedAt})`;
  }

  private async takeLock(r: Release): Promise<void> {
    if (this.lock) return;
    try {
      this.lock = await this.plane.store.lock(LOCK_NAME, this.holderText(r), LOCK_TTL_SECONDS);
    } catch (err) {
      if (err instanceof LockHeldError)
        throw new ReleaseRefusedError(`another release is running: the release lock is held by ${err.holder}`);
      throw err;
    }
  }

  private async dropLock(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release();
  }

  private requireRelease(): Release {
    if (!this.release)
      throw new ReleaseRefusedError('there is no release: start one with `dayshift release start --version V`', {
        status: 404,
      });
    return this.release;
  }

  private checkVersion(version: string): void {
    if (!VERSION.test(version))
      throw new ReleaseRefusedError(
        `"${version}" is not a version: use letters, digits, ".", "_", "+" and "-" (at most 100)`,
        { status: 400 },
      );
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
