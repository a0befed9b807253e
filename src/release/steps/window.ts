// The window step: waits until the release window opens (planned when a release started outside it).
import { delay } from '../../delay.js';
import { releaseConfig } from '../plan.js';
import type { WindowStep } from '../types.js';
import { inWindow, nextWindowStart } from '../window.js';
import type { StepRunner } from './step.js';

export const waitWindow: StepRunner<WindowStep> = async (_step, ctx) => {
  for (;;) {
    const windows = releaseConfig(ctx.plane.config).windows;
    if (!windows || inWindow(windows)) return { detail: 'inside the release window' };
    const next = nextWindowStart(windows);
    await delay(Math.min(60_000, next ? Math.max(1000, next.getTime() - Date.now()) : 60_000), ctx.signal);
  }
};
