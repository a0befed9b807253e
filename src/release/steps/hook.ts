// The hook step: runs a hook of the plan (before, after) or of a cluster (stop, deploy, start, and
// rollback on abort), once or once per member, with the release's environment.
import type { HookConfig } from '../../config/release-schema.js';
import { memberId } from '../../model.js';
import { ReleaseStepError } from '../errors.js';
import { commandFailure, runCommand } from '../hooks.js';
import { clusterPlan, releaseConfig } from '../plan.js';
import type { HookStep } from '../types.js';
import { captureOutput, releaseEnv, type StepRunner } from './step.js';

export const runHook: StepRunner<HookStep> = async (step, ctx) => {
  const { plane, release: r } = ctx;
  const { hook: name, cluster } = step;
  const hook: HookConfig | undefined =
    cluster && (name === 'stop' || name === 'deploy' || name === 'start')
      ? clusterPlan(plane.config, cluster).hooks[name]
      : releaseConfig(plane.config).hooks[name];
  if (!hook) return { detail: 'no hook configured' };
  const { lines, onLine } = captureOutput(step, ctx);
  const runs: { env: Record<string, string>; label: string }[] = [];
  const base = releaseEnv(plane, r, cluster);
  if (hook.per === 'member' && cluster) {
    plane.config.clusters[cluster]!.members.forEach((m, i) => {
      const id = memberId(m.route, i);
      runs.push({ env: { ...base, DAYSHIFT_MEMBER: id, DAYSHIFT_MEMBER_URL: m.url }, label: `${cluster}/${id}` });
    });
  } else {
    runs.push({ env: base, label: cluster ?? 'release' });
  }
  for (const run of runs) {
    if (runs.length > 1) onLine(`[${run.label}] $ ${hook.run}`);
    const result = await runCommand(hook.run, {
      cwd: plane.loaded.baseDir,
      env: run.env,
      timeoutMs: hook.timeout,
      signal: ctx.signal,
      onLine: (line) => {
        onLine(line);
        ctx.logger.info({ release: r.id, step: step.id, member: run.label }, `hook ${name}: ${line}`);
      },
    });
    const failure = commandFailure(`hook ${name}${runs.length > 1 ? ` for ${run.label}` : ''}`, result, hook.timeout);
    if (failure) throw new ReleaseStepError(failure, { output: lines });
  }
  return { detail: runs.length > 1 ? `ran for ${runs.length} members` : 'exited with 0' };
};
