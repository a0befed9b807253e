// The drain step: the cluster stops taking new sessions and the step waits until its bound sessions went
// idle, or the plan's deadline passed.
import type { DrainProgress } from '../../control/plane.js';
import { drainOutcome } from '../../control/drain-text.js';
import { clusterPlan } from '../plan.js';
import type { DrainStep } from '../types.js';
import { change, clusterTarget, releaseActor, type StepRunner } from './step.js';

export const drain: StepRunner<DrainStep> = async ({ cluster }, ctx) => {
  const { plane, release: r } = ctx;
  const current = plane.state.clusters[cluster]!;
  if (current.traffic === 'out') return { detail: `${cluster} was already out of public traffic`, skipped: true };
  const plan = clusterPlan(plane.config, cluster);
  // The release owns its drain and the plan's deadline (tunnels left then are closed in its name), also
  // when an operator drained the cluster before it; after a restart it already does.
  const actor = releaseActor(r);
  if (current.traffic === 'live' || current.drainDeadline?.who !== actor.who) {
    // Taking over a drain changes only its deadline: the safety rules were applied when it started.
    const takeOver = current.traffic === 'draining';
    await change(() =>
      plane.setTraffic(actor, cluster, 'draining', { deadlineMs: plan.drainDeadlineMs, force: takeOver }),
    );
  }
  const onProgress = (p: DrainProgress) => {
    r.drain = p;
    ctx.progress();
  };
  const final = await plane.waitDrained(clusterTarget(cluster), {
    idleMs: plan.drainIdleMs,
    signal: ctx.signal,
    onProgress,
    pollMs: ctx.pollMs(250),
  });
  return { detail: drainOutcome(final) };
};
