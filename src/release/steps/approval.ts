// The approval step: waits for `dayshift release approve`, or for the automatic approval time the plan
// sets. The gate carries an operator's approval from the command to the waiting step.
import { clusterPlan } from '../plan.js';
import type { ApprovalStep } from '../types.js';
import type { StepRunner } from './step.js';

/** The longest single wait: a manual approval looks again this often (a wake-up ends the wait early). */
const HOUR_MS = 3_600_000;

export class ApprovalGate {
  private approvedBy: string | undefined;
  private wakeUp: (() => void) | undefined;

  /** Records an approval; the waiting step sees it when it looks next (see wake). */
  approve(who: string): void {
    this.approvedBy = who;
  }

  /** Makes the waiting step look now. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Forgets an approval given before a step that is not an approval. */
  clear(): void {
    this.approvedBy = undefined;
  }

  get approved(): boolean {
    return this.approvedBy !== undefined;
  }

  /** Who approved; the approval is used up. */
  take(): string | undefined {
    const who = this.approvedBy;
    this.approvedBy = undefined;
    return who;
  }

  /** Waits `ms`, or until woken; rejects when `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(done, ms);
      const onAbort = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        reject(signal?.reason);
      };
      function done() {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }
      this.wakeUp = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        done();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

export const awaitApproval: StepRunner<ApprovalStep> = async (step, ctx) => {
  const approval = clusterPlan(ctx.plane.config, step.cluster).approval;
  if (approval.mode === 'auto' && approval.afterMs === 0) return { detail: 'approved automatically' };
  let approvesAt: number | undefined;
  if (approval.mode === 'auto') {
    // Counted from the step's first start, so a restart does not push the approval time back.
    approvesAt = Date.parse(step.startedAt!) + approval.afterMs;
    const at = new Date(approvesAt).toISOString();
    if (step.approvesAt !== at) {
      step.approvesAt = at;
      await ctx.save();
    }
  }
  const gate = ctx.approvals;
  while (!gate.approved) {
    const wait = approvesAt !== undefined ? approvesAt - Date.now() : HOUR_MS;
    if (wait <= 0) return { detail: 'approved automatically when the approval time came' };
    await gate.wait(Math.min(wait, HOUR_MS), ctx.signal);
  }
  step.approvedBy = gate.take();
  return { detail: `approved by ${step.approvedBy}` };
};
