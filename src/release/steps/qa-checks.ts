// The QA checks step: HTTP requests through the cluster's QA site, and commands (checks.ts runs them).
import { listenerOrigin, qaUrlOf } from '../../control/status.js';
import { runQaChecks, type QaTarget } from '../checks.js';
import { ReleaseStepError } from '../errors.js';
import { clusterPlan } from '../plan.js';
import type { QaChecksStep } from '../types.js';
import { captureOutput, releaseEnv, type StepContext, type StepRunner } from './step.js';

export const runQaStep: StepRunner<QaChecksStep> = async (step, ctx) => {
  const { plane, release } = ctx;
  const { lines, onLine } = captureOutput(step, ctx);
  await runQaChecks(clusterPlan(plane.config, step.cluster).qa, {
    target: qaTarget(step.cluster, ctx),
    cwd: plane.loaded.baseDir,
    env: releaseEnv(plane, release, step.cluster),
    signal: ctx.signal,
    onLine,
  });
  return { detail: `${lines.filter((l) => l.startsWith('GET ') || l.startsWith('$ ')).length} check(s) passed` };
};

function qaTarget(cluster: string, { plane, httpOrigin }: StepContext): QaTarget {
  const url = qaUrlOf(plane, cluster);
  if (!url) throw new ReleaseStepError(`cluster ${cluster} has no QA site: add a site whose routes are pinned to it, or set clusters.${cluster}.qa_url`);
  const parsed = new URL(url);
  if (plane.config.clusters[cluster]?.qa_url) return { url, origin: parsed.origin, host: parsed.host };
  const origin = httpOrigin?.() ?? listenerOrigin([plane.config.listen.http].flat()[0]);
  if (!origin) throw new ReleaseStepError('no http listener to send QA checks to');
  return { url, origin, host: parsed.host };
}
