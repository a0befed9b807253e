// The out step: the cluster leaves public traffic; its QA site still reaches it.
import type { OutStep } from '../types.js';
import { change, releaseActor, type StepRunner } from './step.js';

export const takeOut: StepRunner<OutStep> = async ({ cluster }, { plane, release }) => {
  if (plane.state.clusters[cluster]?.traffic === 'out') return { detail: 'already out' };
  await change(() => plane.setTraffic(releaseActor(release), cluster, 'out'));
  return { detail: `${cluster} is out of public traffic; its QA site still reaches it` };
};
