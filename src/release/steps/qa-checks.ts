// The QA checks step: HTTP requests through the cluster's QA site, and commands (checks.ts runs them).
import { qaTargetFor, runQaChecks } from '../checks.js';
import { clusterPlan } from '../plan.js';
import type { QaChecksStep } from '../types.js';
import { captureOutput, releaseEnv, type StepRunner } from './step.js';

export const runQaStep: StepRunner<QaChecksStep> = async (step, ctx) => {
  const { plane, release } = ctx;
  const { lines, onLine } = captureOutput(step, ctx);
  await runQaChecks(clusterPlan(plane.config, step.cluster).qa, {
    target: qaTargetFor(plane.config, step.cluster, ctx.httpOrigin?.()),
    cwd: plane.loaded.baseDir,
    env: releaseEnv(plane, release, step.cluster),
    signal: ctx.signal,
    onLine,
  });
  return { detail: `${lines.filter((l) => l.startsWith('GET ') || l.startsWith('$ ')).length} check(s) passed` };
};
