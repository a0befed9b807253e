// What a step runner gets and returns, the wrapper that records how a step ended (modelled on
// db/switchover.ts's step()), and the helpers several step kinds share.
import type { Logger } from 'pino';
import type { Actor } from '../../control/audit.js';
import type { ControlPlane } from '../../control/plane.js';
import { RefusedError } from '../../control/errors.js';
import type { StatsSampler } from '../../observe/sampler.js';
import { qaUrlOf } from '../../observe/status-report.js';
import type { Target } from '../../control/targets.js';
import { ReleaseStepError } from '../errors.js';
import type { Release, ReleaseStep } from '../types.js';
import type { ApprovalGate } from './approval.js';
import { messageOf } from '../../errors.js';

/** How a step ended well: what it did, and whether it found nothing to do (`skipped`). */
export interface StepOutcome {
  detail: string;
  skipped?: boolean;
}

/** What the conductor lends a step while it runs. */
export interface StepContext {
  plane: ControlPlane;
  release: Release;
  logger: Logger;
  /** The proxy's figures, for canary analysis (absent with external drivers). */
  sampler?: StatsSampler;
  /** Where the proxy's http listener answers (QA checks connect there). */
  httpOrigin?: () => string | undefined;
  approvals: ApprovalGate;
  /** Stops the step when the release is aborted or the conductor closes; rollback hooks run without one. */
  signal?: AbortSignal;
  /** Writes the release to the journal (and tells watchers). */
  save(): Promise<void>;
  /** Tells watchers of live progress (drain figures, output), a few times a second at most, unsaved. */
  progress(): void;
  /** How often drains, gates and analysis look again, given the step's normal interval. */
  pollMs(normal: number): number;
}

/** Runs one kind of step; throws ReleaseStepError when it fails for a reason the operator can act on. */
export type StepRunner<S extends ReleaseStep> = (step: S, ctx: StepContext) => Promise<StepOutcome>;

/**
 * Runs a step's body and writes how it ended on the step: state, end time, detail, and the output a
 * failure carried. A body cut short by `signal` leaves the step as it is: whoever stopped it says why.
 * Returns whether the step ended well.
 */
export async function settle(
  step: ReleaseStep,
  body: () => Promise<StepOutcome>,
  signal?: AbortSignal,
): Promise<boolean> {
  let outcome: StepOutcome;
  try {
    outcome = await body();
  } catch (err) {
    if (signal?.aborted) return false;
    step.state = 'failed';
    step.endedAt = new Date().toISOString();
    step.detail = messageOf(err);
    if (err instanceof ReleaseStepError && err.output) step.output = err.output.slice(-50);
    return false;
  }
  if (signal?.aborted) return false;
  step.state = outcome.skipped ? 'skipped' : 'succeeded';
  step.endedAt = new Date().toISOString();
  step.detail = outcome.detail;
  return true;
}

/** A traffic change; one the control plane's safety rules refuse fails the step with the plane's reason. */
export async function change(work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (err instanceof RefusedError) throw new ReleaseStepError(err.message);
    throw err;
  }
}

/** Who the audit log names for the changes a release makes. */
export function releaseActor(r: Release): Actor {
  return { who: `release:${r.id}`, from: 'conductor' };
}

/** The environment of hooks, QA commands and migrations. */
export function releaseEnv(plane: ControlPlane, r: Release, cluster: string | undefined): Record<string, string> {
  const env: Record<string, string> = { DAYSHIFT_VERSION: r.version, DAYSHIFT_RELEASE: r.id };
  if (r.previousVersion) env.DAYSHIFT_PREVIOUS_VERSION = r.previousVersion;
  if (cluster) {
    env.DAYSHIFT_CLUSTER = cluster;
    const qa = qaUrlOf(plane, cluster);
    if (qa) env.DAYSHIFT_QA_URL = qa;
  }
  return env;
}

/** Collects a step's output lines as they come (the last 50), for watchers to see live. */
export function captureOutput(
  step: ReleaseStep,
  ctx: StepContext,
): { lines: string[]; onLine: (line: string) => void } {
  const lines: string[] = [];
  step.output = lines;
  return {
    lines,
    onLine: (line) => {
      lines.push(line);
      if (lines.length > 50) lines.shift();
      step.output = lines;
      ctx.progress();
    },
  };
}

export function clusterTarget(cluster: string): Target {
  return { kind: 'cluster', cluster };
}
