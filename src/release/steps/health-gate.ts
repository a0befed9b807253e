// The health gate step: every member of the deployed cluster up, and staying up (the gate is checks.ts's).
import { healthGate } from '../checks.js';
import { releaseConfig } from '../plan.js';
import type { HealthGateStep } from '../types.js';
import type { StepRunner } from './step.js';

export const passHealthGate: StepRunner<HealthGateStep> = async ({ cluster }, ctx) => {
  const health = releaseConfig(ctx.plane.config).health;
  return {
    detail: await healthGate(ctx.plane, cluster, {
      timeoutMs: health.timeout,
      stableMs: Math.min(health.stable, health.timeout),
      signal: ctx.signal,
      pollMs: ctx.pollMs(250),
    }),
  };
};
