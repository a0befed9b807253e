// The shadow step: after QA, before approval, a share of public requests is copied to the deployed
// cluster (out of traffic) for a while, and the comparison of its answers with the live ones gates the
// approval (src/control/shadow.ts judges it). The shadow is stopped when the step ends, pass or fail.
import { formatDuration } from '../../config/units.js';
import { judgeShadow, pct, type ShadowReport } from '../../control/shadow.js';
import { delay } from '../../delay.js';
import { messageOf } from '../../errors.js';
import { ReleaseStepError } from '../errors.js';
import { clusterPlan } from '../plan.js';
import type { ShadowStep } from '../types.js';
import { releaseActor, type StepRunner } from './step.js';

/** The shadow outlives the step's watch by this much, so a step that stalls still ends its copies. */
const SHADOW_MARGIN_MS = 60_000;

export const runShadowStep: StepRunner<ShadowStep> = async ({ cluster }, ctx) => {
  const { plane, release } = ctx;
  const plan = clusterPlan(plane.config, cluster).shadow;
  if (!plan) return { detail: `no shadow planned for ${cluster}`, skipped: true };
  const actor = releaseActor(release);
  try {
    await plane.startShadow(actor, {
      cluster,
      percent: plan.percent,
      forMs: plan.for + SHADOW_MARGIN_MS,
      ...(plan.methods ? { methods: plan.methods } : {}),
    });
  } catch (err) {
    throw new ReleaseStepError(`the shadow of ${cluster} could not start: ${messageOf(err)}`);
  }
  const ends = Date.now() + plan.for;
  try {
    while (Date.now() < ends) {
      await delay(Math.min(ctx.pollMs(1000), Math.max(0, ends - Date.now())), ctx.signal);
      const report = plane.shadowReport();
      if (report) release.shadow = report;
      ctx.progress();
    }
  } finally {
    await plane.stopShadow(actor, cluster).catch(() => undefined);
  }
  const report = plane.shadowReport();
  if (!report) throw new ReleaseStepError(`the shadow of ${cluster} left no figures`);
  release.shadow = report;
  const summary = summarise(report);
  const breach = judgeShadow(report, plan);
  if (breach) throw new ReleaseStepError(`shadow of ${cluster}: ${breach}`, { output: summary });
  return { detail: `${summary.join('; ')}: within the thresholds` };
};

function summarise(r: ShadowReport): string[] {
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v)}ms`);
  return [
    `${r.shadow.requests} request(s) compared over ${formatDuration(Date.parse(r.until) - Date.parse(r.started))} (${r.copies.dropped} dropped)`,
    `5xx live ${pct(r.live.rate5xx)}, shadow ${pct(r.shadow.rate5xx)}`,
    `p99 live ${ms(r.live.p99Ms)}, shadow ${ms(r.shadow.p99Ms)}`,
  ];
}
