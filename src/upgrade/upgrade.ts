// `dayshift upgrade` (also SIGUSR2 and POST /api/upgrade): replaces the running generation of Dayshift
// with one running the code now installed, with no moment when nothing listens. In order:
// 1. a release under way is handed over (conductor.handOver: stopped at a point safe to repeat) and
//    changes are held (409), so that the store holds the whole state and nothing changes it meanwhile;
//    the sessions a drain waits for are written to the state directory (sessions.ts);
// 2. the next generation starts on the same listening sockets (next-generation.ts) and takes its state
//    from the store; both accept on the sockets until it serves;
// 3. this generation stops accepting, finishes its requests in flight and exits (retire), writing no
//    state; the next one carries the release on. If the next one fails, it is stopped, this one takes
//    the release back and takes changes again, and the upgrade fails with the next one's reason.
import { readFileSync } from 'node:fs';
import type { Actor } from '../control/audit.js';
import type { Dayshift } from '../dayshift.js';
import { messageOf } from '../errors.js';
import { UpgradeRefusedError } from './errors.js';
import { startNextGeneration, type Generation } from './next-generation.js';
import { dropHandedSessions, handSessionsOver } from './sessions.js';

/** How long the next generation may take to serve, unless the caller says. */
export const DEFAULT_UPGRADE_TIMEOUT_MS = 60_000;

export interface UpgradeResult {
  old: Generation;
  new: Generation;
  /** The release the next generation carries on, if one was under way. */
  release?: string;
}

export interface UpgraderOptions {
  dayshift: Dayshift;
  version: string;
  /** Stops this generation once the next one serves (the caller's graceful stop, then exit). */
  retire: () => void;
  /** True once this generation is stopping (SIGTERM): there is nothing left to upgrade. */
  stopping: () => boolean;
}

export class Upgrader {
  private underWay = false;
  private replaced = false;
  /** Why upgrades are refused in this process, decided at start: see systemdRefusal(). */
  private readonly refusal = systemdRefusal();

  constructor(private readonly options: UpgraderOptions) {}

  /**
   * Upgrades, resolving once the next generation serves; this one then retires (once `answered`, the
   * reply to whoever asked, has gone out). Throws UpgradeRefusedError when nothing was started, and
   * UpgradeFailedError when the next generation failed (this one serving on).
   */
  async upgrade(
    actor: Actor,
    options: { timeoutMs?: number; answered?: Promise<unknown> } = {},
  ): Promise<UpgradeResult> {
    if (this.refusal) throw new UpgradeRefusedError(this.refusal);
    if (this.replaced || this.options.stopping())
      throw new UpgradeRefusedError('this Dayshift is stopping (or already replaced): nothing to upgrade');
    if (this.underWay) throw new UpgradeRefusedError('an upgrade is already under way: wait for its result');
    this.underWay = true;
    try {
      const result = await this.run(actor, options.timeoutMs ?? DEFAULT_UPGRADE_TIMEOUT_MS);
      this.replaced = true;
      void Promise.resolve(options.answered).finally(() => this.options.retire());
      return result;
    } finally {
      this.underWay = false;
    }
  }

  private async run(actor: Actor, timeoutMs: number): Promise<UpgradeResult> {
    const { plane, conductor, audit, logger, sessions, stateDir } = this.options.dayshift;
    const old: Generation = { pid: process.pid, version: this.options.version };
    const sockets = this.options.dayshift.sockets();
    const release = await conductor.handOver();
    await plane.holdChanges('Dayshift is being upgraded: changes are held until the new generation serves; retry then');
    await handSessionsOver(stateDir, sessions);
    logger.info(
      { by: actor.who, sockets: sockets.map((s) => s.name), release: release?.id, sessions: sessions.size },
      `upgrade: starting the next generation on ${sockets.length} listening socket(s)`,
    );
    let next: Generation;
    try {
      next = await startNextGeneration(sockets, timeoutMs);
    } catch (err) {
      plane.resumeChanges();
      await dropHandedSessions(stateDir).catch(() => undefined);
      await conductor
        .takeOver()
        .catch((e: unknown) => logger.error({ err: e }, 'upgrade failed, and the release could not be taken back'));
      await audit
        .record(actor, 'upgrade failed', 'dayshift', { version: old.version, pid: old.pid, error: messageOf(err) })
        .catch(() => undefined);
      logger.error({ err }, `upgrade failed: ${messageOf(err)}`);
      throw err;
    }
    const result: UpgradeResult = { old, new: next, ...(release ? { release: release.id } : {}) };
    await audit.record(actor, 'upgrade', 'dayshift', { ...result }).catch(() => undefined);
    logger.info(
      { old, new: next, release: release?.id },
      `upgraded: dayshift ${next.version} (pid ${next.pid}) serves; this generation (${old.version}, pid ${old.pid}) finishes its requests and exits`,
    );
    return result;
  }
}

/**
 * Dayshift as the main process of a systemd service: when it exits, systemd would take the service for
 * stopped and stop the new generation with it. There the upgrade is `systemctl restart`, which refuses
 * no connection with the socket units (docs/operations.md).
 */
export function systemdRefusal(): string | undefined {
  if (process.env.INVOCATION_ID === undefined) return undefined;
  let parent = '';
  try {
    parent = readFileSync(`/proc/${process.ppid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (parent !== 'systemd') return undefined;
  return (
    'Dayshift runs as a systemd service: systemd would stop the new generation with this one. Install the new ' +
    'version and run `systemctl restart` on the service instead: with its socket units no connection is refused'
  );
}
