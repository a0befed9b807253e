// The shift step: gives the deployed cluster its traffic back, at once (swap) or in canary steps whose
// figures are compared with the other live clusters'; a breach rolls the shift back and fails the step.
import type { Rates } from '../../observe/sampler.js';
import { targetMembers } from '../../control/targets.js';
import { analyse } from '../checks.js';
import { delay } from '../../delay.js';
import { ReleaseStepError } from '../errors.js';
import { clusterPlan } from '../plan.js';
import type { CanaryProgress, ShiftStep } from '../types.js';
import { change, clusterTarget, releaseActor, type StepRunner } from './step.js';

export const shiftTraffic: StepRunner<ShiftStep> = async ({ cluster }, ctx) => {
  const { plane, release: r, sampler } = ctx;
  const before = r.before[cluster];
  if (!before || before.traffic !== 'live')
    return { detail: `${cluster} was ${before?.traffic ?? 'unknown'} before the release: left out`, skipped: true };
  const weight = before.weight > 0 ? before.weight : 1;
  const shift = clusterPlan(plane.config, cluster).shift;
  const actor = releaseActor(r);
  if (shift.mode === 'swap') {
    await change(() => plane.setTraffic(actor, cluster, 'live', { weight }));
    return { detail: `${cluster} is live (weight ${weight})` };
  }
  const others = Object.entries(plane.state.clusters)
    .filter(([name, c]) => name !== cluster && c.traffic === 'live')
    .map(([name]) => ({ name, weight: r.before[name]?.weight ?? 1 }));
  const otherTotal = others.reduce((n, o) => n + o.weight, 0);
  const restoreOthers = async () => {
    for (const o of others)
      if (plane.state.clusters[o.name]?.weight !== o.weight)
        await change(() => plane.setClusterWeight(actor, o.name, o.weight));
  };
  const releasedMembers = targetMembers(plane.config, clusterTarget(cluster));
  const baselineMembers = others.flatMap((o) => targetMembers(plane.config, clusterTarget(o.name)));
  const analysis = shift.analysis;
  const started = Date.now();
  for (const s of shift.steps) {
    if (others.length > 0 && s.percent < 100) {
      await change(() => plane.setTraffic(actor, cluster, 'live', { weight: s.percent }));
      for (const o of others) {
        const w = Math.max(1, Math.round(((100 - s.percent) * o.weight) / otherTotal));
        await change(() => plane.setClusterWeight(actor, o.name, w));
      }
    } else {
      await change(() => plane.setTraffic(actor, cluster, 'live', { weight }));
      await restoreOthers();
    }
    r.canary = {
      cluster,
      percent: s.percent,
      released: { requestsPerSecond: 0, errorRate: 0 },
      baseline: { requestsPerSecond: 0, errorRate: 0 },
    };
    await ctx.save();
    const holdUntil = Date.now() + s.pause;
    while (Date.now() < holdUntil) {
      await delay(Math.min(ctx.pollMs(1000), Math.max(0, holdUntil - Date.now())), ctx.signal);
      if (!sampler) continue;
      const windowSeconds = Math.max(
        1,
        Math.min(Math.round(analysis.window / 1000), Math.floor((Date.now() - started) / 1000)),
      );
      const released = sampler.rates(releasedMembers, windowSeconds);
      const baseline = sampler.rates(baselineMembers, windowSeconds);
      r.canary = { cluster, percent: s.percent, released: figures(released), baseline: figures(baseline) };
      const breach = analyse(released, baseline, windowSeconds, analysis);
      if (breach) {
        r.canary.breach = breach;
        // Roll back: the other clusters get their weights back first, so a live cluster always serves.
        await restoreOthers();
        await change(() => plane.setTraffic(actor, cluster, 'out'));
        throw new ReleaseStepError(
          `canary analysis at ${s.percent}%: ${breach}; traffic rolled back (${cluster} is out again)`,
        );
      }
      ctx.progress();
    }
  }
  await change(() => plane.setTraffic(actor, cluster, 'live', { weight }));
  await restoreOthers();
  return {
    detail: `${cluster} is live (weight ${weight}) after ${shift.steps.map((s) => `${s.percent}%`).join(', ')}${sampler ? ', analysis passed' : ' (no proxy figures: not analysed)'}`,
  };
};

function figures(rates: Rates): CanaryProgress['released'] {
  return {
    requestsPerSecond: rates.requestsPerSecond,
    errorRate: rates.errorRate,
    ...(rates.p99Ms !== undefined ? { p99Ms: rates.p99Ms } : {}),
  };
}
