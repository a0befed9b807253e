// A release as it is stored in the journal and shown by the CLI, the API and the dashboard.
import type { HookName } from '../config/release-schema.js';
import type { DrainProgress } from '../control/plane.js';
import type { ShadowReport } from '../control/shadow.js';
import type { TrafficState } from '../model.js';

export type ReleaseState =
  /** A step is running. */
  | 'running'
  /** Waiting for `dayshift release approve` (or an automatic approval time). */
  | 'awaiting-approval'
  /** A step failed; traffic stays on the old cluster; `retry` or `abort`. */
  | 'failed'
  /** The conductor stopped mid-step (crash, kill -9, restart); `resume` or `abort`. */
  | 'interrupted'
  | 'succeeded'
  /** Aborted: traffic returned to the clusters live before the release. */
  | 'aborted';

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'waiting';

/** What every step records, whatever its kind. */
interface StepCommon {
  /** Stable id within the release, e.g. "prod-a:drain". */
  id: string;
  /** Human title: "drain prod-a (idle 5m, deadline 30m)". */
  title: string;
  state: StepState;
  /** Whether running the step twice is harmless; a step that is not asks before `resume` repeats it. */
  repeatable: boolean;
  startedAt?: string;
  endedAt?: string;
  /** What happened, or why it failed. */
  detail?: string;
  /** Captured output of hooks and checks (last lines). */
  output?: string[];
}

/** A step that acts on one cluster. */
interface ClusterStep<K extends string> extends StepCommon {
  kind: K;
  cluster: string;
}

/** Waits for the release window (planned when a release starts outside it with --wait-window). */
export interface WindowStep extends StepCommon {
  kind: 'window';
}

/** Runs a hook: a release-wide one (before, after) or one of a cluster (stop, deploy, start, rollback). */
export interface HookStep extends StepCommon {
  kind: 'hook';
  hook: HookName;
  /** The cluster the hook acts on; absent for the release-wide hooks. */
  cluster?: string;
}

export type DrainStep = ClusterStep<'drain'>;
export type OutStep = ClusterStep<'out'>;
export type HealthGateStep = ClusterStep<'health-gate'>;
export type QaChecksStep = ClusterStep<'qa-checks'>;
export type ShiftStep = ClusterStep<'shift'>;
/** Copies a share of public requests to the cluster and gates approval on the comparison. */
export type ShadowStep = ClusterStep<'shadow'>;

export interface ApprovalStep extends ClusterStep<'approval'> {
  /** When an automatic approval happens (ISO time). */
  approvesAt?: string;
  /** Who approved it. */
  approvedBy?: string;
}

/** One entry of release.database. */
export interface DbStep extends StepCommon {
  kind: 'db-check-replication' | 'db-switchover' | 'db-migrate';
  /** The index of the step in release.database. */
  dbStep: number;
  /**
   * For a db-switchover step without `to`: the server it chose on its first run. A resume reuses it, so a
   * switchover that finished before the crash is found done instead of switching back to the old primary.
   */
  dbTarget?: string;
}

/** One step of a release, told apart by `kind`. A new kind is a member here, a runner in steps/, and a line in plan.ts. */
export type ReleaseStep =
  | WindowStep
  | HookStep
  | DrainStep
  | OutStep
  | HealthGateStep
  | QaChecksStep
  | ShadowStep
  | ApprovalStep
  | ShiftStep
  | DbStep;

export type StepKind = ReleaseStep['kind'];

/** The step type of one kind. */
export type StepOf<K extends StepKind> = Extract<ReleaseStep, { kind: K }>;

/** The fields a plan gives a step besides its common ones: its kind and what that kind needs. */
export type StepFields = FieldsOf<ReleaseStep>;
type FieldsOf<S> = S extends ReleaseStep ? Omit<S, keyof StepCommon> : never;

/** Live figures of a canary shift, shown while it runs. */
export interface CanaryProgress {
  cluster: string;
  percent: number;
  /** The released cluster's and the other live clusters' figures over the analysis window. */
  released: { requestsPerSecond: number; errorRate: number; p99Ms?: number };
  baseline: { requestsPerSecond: number; errorRate: number; p99Ms?: number };
  /** Why analysis rolled the shift back, if it did. */
  breach?: string;
}

/** A cluster's traffic state and weight. */
export interface ClusterTraffic {
  traffic: TrafficState;
  weight: number;
}

export interface Release {
  id: string;
  version: string;
  state: ReleaseState;
  /** Who started it (token name or "cli"), and from where. */
  startedBy: string;
  startedAt: string;
  endedAt?: string;
  /** Traffic state before the release, restored by abort. */
  before: Record<string, ClusterTraffic>;
  steps: ReleaseStep[];
  /** Index of the current (or failed / interrupted) step. */
  current: number;
  /** Live drain progress while a drain step runs. */
  drain?: DrainProgress;
  /** QA URLs per cluster. */
  qaUrls: Record<string, string>;
  /** Why the release failed or was aborted. */
  reason?: string;
  /** The version the last successful release installed, if any (given to the rollback hook). */
  previousVersion?: string;
  /** Live canary figures while a canary shift runs. */
  canary?: CanaryProgress;
  /** The comparison of the last shadow step, live while it runs. */
  shadow?: ShadowReport;
  /** Who aborted it. */
  abortedBy?: string;
  /**
   * Set while the release passes from one Dayshift generation to the next (`dayshift upgrade`): stopped
   * at a point safe to resume, run by nobody. The next generation to start carries it on.
   */
  handedOver?: { at: string; from: number };
}

/** Store keys of the release journal. */
export const RELEASE_KEY_PREFIX = 'releases/';
export const CURRENT_RELEASE_KEY = 'release/current';
