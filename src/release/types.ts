// A release as it is stored in the journal and shown by the CLI, the API and the dashboard.
import type { DrainProgress } from '../control/plane.js';

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

export type StepKind =
  | 'hook'
  | 'drain'
  | 'out'
  | 'health-gate'
  | 'qa-checks'
  | 'approval'
  | 'shift'
  | 'db-check-replication'
  | 'db-switchover';

export interface ReleaseStep {
  /** Stable id within the release, e.g. "prod-a:drain". */
  id: string;
  kind: StepKind;
  /** The cluster the step acts on, if any. */
  cluster?: string;
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

export interface Release {
  id: string;
  version: string;
  state: ReleaseState;
  /** Who started it (token name or "cli"), and from where. */
  startedBy: string;
  startedAt: string;
  endedAt?: string;
  /** Traffic state before the release, restored by abort. */
  before: Record<string, { traffic: string; weight: number }>;
  steps: ReleaseStep[];
  /** Index of the current (or failed / interrupted) step. */
  current: number;
  /** Live drain progress while a drain step runs. */
  drain?: DrainProgress;
  /** QA URLs per cluster. */
  qaUrls: Record<string, string>;
  /** Why the release failed or was aborted. */
  reason?: string;
}
