// What an abort does after it stopped the release: the rollback hook for each cluster the release
// deployed to that is not serving, then the traffic states recorded when the release started. The rules
// are the pure functions below; rollBack() applies them through the control plane.
import type { HookConfig } from '../config/release-schema.js';
import { releaseConfig } from './plan.js';
import { runHook } from './steps/hook.js';
import { change, releaseActor, settle, type StepContext } from './steps/step.js';
import type { ClusterTraffic, HookStep, Release, ReleaseStep } from './types.js';
import { messageOf } from '../errors.js';

/** The clusters a hook of the release (stop, deploy, start) began to act on, in release order. */
export function deployedClusters(steps: ReleaseStep[]): string[] {
  const clusters = steps.flatMap((s) =>
    s.kind === 'hook' && s.cluster && s.startedAt && s.hook !== 'rollback' ? [s.cluster] : [],
  );
  return [...new Set(clusters)];
}

export interface RollbackPlan {
  /** Deployed clusters that went live: they passed their gates and keep serving the new version. */
  serving: string[];
  /** Deployed clusters out of traffic to run the rollback hook for, in this order (the last deployed first). */
  rollBack: string[];
  /** Deployed clusters that stay out of traffic: there is no rollback hook, so they may run the new version. */
  keepOut: string[];
  notes: string[];
}

/**
 * Which deployed clusters keep serving, which get the rollback hook and which stay out. A live one is not
 * rolled back: that would cut its users.
 */
export function planRollback(
  version: string,
  deployed: string[],
  isLive: (cluster: string) => boolean,
  hasRollbackHook: boolean,
): RollbackPlan {
  const serving = deployed.filter(isLive);
  const offline = deployed.filter((c) => !serving.includes(c));
  const notes = serving.map((c) => `${c} is live with version ${version} (it passed its gates) and keeps serving`);
  if (!hasRollbackHook) {
    notes.push(
      ...offline.map(
        (c) =>
          `no rollback hook: ${c} was deployed to and stays out; make it live yourself once it runs the old version`,
      ),
    );
    return { serving, rollBack: [], keepOut: offline, notes };
  }
  if (offline.length === 0) notes.push('no cluster out of traffic was deployed to: no rollback hook needed');
  return { serving, rollBack: offline.reverse(), keepOut: [], notes };
}

/** The order traffic is restored in: clusters live before go live first, so the others can then be taken out safely. */
export function restoreOrder(before: Release['before']): [string, ClusterTraffic][] {
  const entries = Object.entries(before);
  return [...entries.filter(([, b]) => b.traffic === 'live'), ...entries.filter(([, b]) => b.traffic !== 'live')];
}

/**
 * The change that gives a cluster its traffic from before the release back; undefined when there is none
 * to make. A cluster kept out (its rollback failed, or there is no hook) is not made live again.
 */
export function restoreMove(
  was: ClusterTraffic,
  now: ClusterTraffic | undefined,
  keptOut: boolean,
): ClusterTraffic | undefined {
  if (was.traffic === 'live') {
    if (keptOut || (now?.traffic === 'live' && now.weight === was.weight)) return undefined;
    return was;
  }
  return now?.traffic === was.traffic ? undefined : was;
}

/**
 * Runs the rollback hooks and restores the traffic; returns notes for the release's reason. A deployed
 * cluster whose rollback hook failed stays out: it may run the new version.
 */
export async function rollBack(ctx: StepContext): Promise<string[]> {
  const { plane, release: r } = ctx;
  const hook = releaseConfig(plane.config).hooks.rollback;
  const plan = planRollback(
    r.version,
    deployedClusters(r.steps),
    (c) => plane.state.clusters[c]?.traffic === 'live',
    hook !== undefined,
  );
  const notes = plan.notes;
  const keepOut = new Set(plan.keepOut);
  for (const step of hook ? plan.rollBack.map((cluster) => rollbackStep(cluster, hook)) : []) {
    step.startedAt = new Date().toISOString();
    r.steps = r.steps.filter((s) => s.id !== step.id);
    r.steps.push(step);
    await ctx.save();
    if (!(await settle(step, () => runHook(step, ctx)))) {
      keepOut.add(step.cluster);
      notes.push(`rollback hook failed for ${step.cluster} (${step.detail}): it stays out of traffic`);
    }
    await ctx.save();
  }
  const actor = releaseActor(r);
  for (const [cluster, was] of restoreOrder(r.before)) {
    const move = restoreMove(was, plane.state.clusters[cluster], keepOut.has(cluster));
    if (!move) continue;
    try {
      await change(() => plane.setTraffic(actor, cluster, move.traffic, { weight: move.weight }));
    } catch (err) {
      notes.push(
        was.traffic === 'live'
          ? `could not make ${cluster} live again: ${messageOf(err)}`
          : `left ${cluster} as it is: ${messageOf(err)}`,
      );
    }
  }
  delete r.canary;
  notes.push(
    `traffic restored: ${Object.keys(r.before)
      .map((c) => `${c} ${plane.state.clusters[c]?.traffic}`)
      .join(', ')}`,
  );
  return notes;
}

function rollbackStep(cluster: string, hook: HookConfig): HookStep & { cluster: string } {
  return {
    id: `${cluster}:rollback`,
    kind: 'hook',
    hook: 'rollback',
    cluster,
    title: `rollback ${cluster}: ${hook.title ?? hook.run}`,
    state: 'running',
    repeatable: hook.repeatable,
  };
}
