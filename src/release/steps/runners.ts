// The runner of each step kind. A new kind is a member of ReleaseStep (types.ts), its file here, its
// entry in this table (the compiler asks for it) and its line in plan.ts.
import { ReleaseStepError } from '../errors.js';
import type { ReleaseStep, StepKind, StepOf } from '../types.js';
import { awaitApproval } from './approval.js';
import { databaseStep } from './database.js';
import { drain } from './drain.js';
import { passHealthGate } from './health-gate.js';
import { runHook } from './hook.js';
import { takeOut } from './out.js';
import { runQaStep } from './qa-checks.js';
import { runShadowStep } from './shadow.js';
import { shiftTraffic } from './shift.js';
import type { StepContext, StepOutcome, StepRunner } from './step.js';
import { waitWindow } from './window.js';

const RUNNERS: { [K in StepKind]: StepRunner<StepOf<K>> } = {
  window: waitWindow,
  hook: runHook,
  drain,
  out: takeOut,
  'health-gate': passHealthGate,
  'qa-checks': runQaStep,
  shadow: runShadowStep,
  approval: awaitApproval,
  shift: shiftTraffic,
  'db-check-replication': databaseStep,
  'db-switchover': databaseStep,
  'db-migrate': databaseStep,
};

/** Runs a step's body by its kind's runner. */
export function runStepBody(step: ReleaseStep, ctx: StepContext): Promise<StepOutcome> {
  // The table pairs every kind with the runner of that kind's steps. A journal written by another
  // Dayshift version may name a kind this one does not know.
  const runner = Object.hasOwn(RUNNERS, step.kind) ? (RUNNERS[step.kind] as StepRunner<ReleaseStep>) : undefined;
  if (!runner) throw new ReleaseStepError(`the conductor cannot run ${step.kind} steps`);
  return runner(step, ctx);
}
