// Turns the `release:` config and a version into the steps of a release. The steps are what the
// conductor runs, the journal records and `release start --plan` prints.
import {
  releaseSchema,
  CLUSTER_HOOKS,
  type ClusterHookName,
  type HookConfig,
  type QaCheckConfig,
  type ReleaseConfig,
  type ShiftConfig,
  type ShadowStepConfig,
  type Approval,
} from '../config/release-schema.js';
import type { DayshiftConfig } from '../config/schema.js';
import { formatDuration } from '../config/units.js';
import type { ReleaseStep, StepFields } from './types.js';
import { describeWindows } from './window.js';

/** The release plan of a config; a config without `release:` gets the defaults (no hooks, manual approval). */
export function releaseConfig(config: DayshiftConfig): ReleaseConfig {
  return config.release ?? releaseSchema.parse({});
}

/** Clusters in release order (the config schema has checked that `order` names known clusters). */
export function clusterOrder(config: DayshiftConfig): string[] {
  return releaseConfig(config).order ?? Object.keys(config.clusters);
}

/** What one cluster's part of the release does, after per-cluster overrides. */
export interface ClusterPlan {
  drainIdleMs: number;
  drainDeadlineMs: number;
  hooks: Partial<Record<ClusterHookName, HookConfig>>;
  qa: QaCheckConfig[];
  approval: Approval;
  shift: ShiftConfig;
  shadow: ShadowStepConfig | undefined;
}

export function clusterPlan(config: DayshiftConfig, cluster: string): ClusterPlan {
  const plan = releaseConfig(config);
  const own = plan.clusters[cluster] ?? {};
  const hooks: Partial<Record<ClusterHookName, HookConfig>> = {};
  for (const name of CLUSTER_HOOKS) {
    const hook = own.hooks?.[name] ?? plan.hooks[name];
    if (hook) hooks[name] = hook;
  }
  return {
    drainIdleMs: own.drain?.session_idle ?? plan.drain.session_idle ?? config.drain.session_idle,
    drainDeadlineMs: own.drain?.deadline ?? plan.drain.deadline ?? config.drain.deadline,
    hooks,
    qa: own.qa ?? plan.qa,
    approval: own.approval ?? plan.approval,
    shift: own.shift ?? plan.shift,
    shadow: own.shadow ?? plan.shadow,
  };
}

export function describeApproval(approval: Approval): string {
  if (approval.mode === 'manual') return 'manual approval (`dayshift release approve`)';
  return approval.afterMs === 0
    ? 'automatic approval'
    : `approval (automatic after ${formatDuration(approval.afterMs)})`;
}

function describeShift(shift: ShiftConfig): string {
  if (shift.mode === 'swap') return 'swap';
  const a = shift.analysis;
  return `canary ${shift.steps.map((s) => `${s.percent}%/${formatDuration(s.pause)}`).join(' → ')} → 100% (analysis: error rate ≤ ${a.max_error_rate}, p99 ≤ ${a.max_p99_ratio}× over ${formatDuration(a.window)})`;
}

/** ", 1 on the public host through a preview" when some checks go through a preview. */
function previewed(qa: QaCheckConfig[]): string {
  const n = qa.filter((c) => c.via === 'preview').length;
  return n > 0 ? `, ${n} on the public host through a preview` : '';
}

function describeShadow(s: ShadowStepConfig, methods: string[]): string {
  return `copy ${s.percent}% of ${(s.methods ?? methods).join(', ')} for ${formatDuration(s.for)}; 5xx ≤ live + ${+(s.max_5xx_increase * 100).toFixed(3)} points, p99 ≤ ${s.max_p99_ratio}× live, ≥ ${s.min_samples} compared`;
}

function describeHook(hook: HookConfig): string {
  return `${hook.per === 'member' ? 'per member: ' : ''}${hook.title ?? hook.run}`;
}

const step = (id: string, title: string, repeatable: boolean, fields: StepFields): ReleaseStep => ({
  id,
  ...fields,
  title,
  state: 'pending',
  repeatable,
});

export function buildSteps(config: DayshiftConfig, options: { waitWindow?: boolean } = {}): ReleaseStep[] {
  const plan = releaseConfig(config);
  const order = clusterOrder(config);
  const steps: ReleaseStep[] = [];
  if (plan.windows && options.waitWindow)
    steps.push(
      step('window', `wait for the release window: ${describeWindows(plan.windows)}`, true, { kind: 'window' }),
    );
  if (plan.hooks.before)
    steps.push(
      step('before', `hook before: ${describeHook(plan.hooks.before)}`, plan.hooks.before.repeatable, {
        kind: 'hook',
        hook: 'before',
      }),
    );
  plan.database.forEach((db, i) => {
    const id = `db:${i + 1}`;
    if (db.kind === 'check-replication')
      steps.push(
        step(id, 'db: check replication (running, caught up, no errant transactions)', true, {
          kind: 'db-check-replication',
          dbStep: i,
        }),
      );
    // A switchover journals itself; the step finds a finished one and does not switch back.
    else if (db.kind === 'switchover')
      steps.push(step(id, `db: switchover to ${db.to ?? 'the replica'}`, true, { kind: 'db-switchover', dbStep: i }));
    else
      steps.push(
        step(id, `db: migrate on the ${db.on}: ${db.title ?? db.run}`, db.repeatable, {
          kind: 'db-migrate',
          dbStep: i,
        }),
      );
  });
  for (const cluster of order) {
    const p = clusterPlan(config, cluster);
    steps.push(
      step(
        `${cluster}:drain`,
        `drain ${cluster} (session idle ${formatDuration(p.drainIdleMs)}, deadline ${formatDuration(p.drainDeadlineMs)})`,
        true,
        { kind: 'drain', cluster },
      ),
    );
    steps.push(step(`${cluster}:out`, `take ${cluster} out of public traffic`, true, { kind: 'out', cluster }));
    for (const name of CLUSTER_HOOKS) {
      const hook = p.hooks[name];
      if (hook)
        steps.push(
          step(`${cluster}:${name}`, `${name} ${cluster}: ${describeHook(hook)}`, hook.repeatable, {
            kind: 'hook',
            cluster,
            hook: name,
          }),
        );
    }
    steps.push(
      step(
        `${cluster}:health`,
        `health gate ${cluster} (all members up within ${formatDuration(plan.health.timeout)})`,
        true,
        { kind: 'health-gate', cluster },
      ),
    );
    if (p.qa.length > 0)
      steps.push(
        step(`${cluster}:qa`, `QA checks on ${cluster} (${p.qa.length}${previewed(p.qa)})`, true, {
          kind: 'qa-checks',
          cluster,
        }),
      );
    if (p.shadow)
      steps.push(
        step(`${cluster}:shadow`, `shadow ${cluster}: ${describeShadow(p.shadow, config.shadow.methods)}`, true, {
          kind: 'shadow',
          cluster,
        }),
      );
    steps.push(
      step(`${cluster}:approval`, `${describeApproval(p.approval)} for ${cluster}`, true, {
        kind: 'approval',
        cluster,
      }),
    );
    steps.push(
      step(`${cluster}:shift`, `shift traffic to ${cluster}: ${describeShift(p.shift)}`, true, {
        kind: 'shift',
        cluster,
      }),
    );
  }
  if (plan.hooks.after)
    steps.push(
      step('after', `hook after: ${describeHook(plan.hooks.after)}`, plan.hooks.after.repeatable, {
        kind: 'hook',
        hook: 'after',
      }),
    );
  return steps;
}
