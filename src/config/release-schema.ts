// The release plan (config key `release:`): the order of clusters, hooks, gates, the traffic shift and
// release windows. See docs/releases.md for every key with an example.
import { z } from 'zod';
import { duration, parseDuration } from './units.js';

/** A shell command run by /bin/sh in the config file's directory. */
const hookObject = z.strictObject({
  run: z.string().min(1),
  timeout: duration.default(10 * 60_000),
  /** `member`: run once per member of the cluster (DAYSHIFT_MEMBER and DAYSHIFT_MEMBER_URL set), one after another. */
  per: z.enum(['cluster', 'member']).default('cluster'),
  /**
   * Whether running the command twice is harmless. A step that is not asks before `release resume`
   * repeats it after a crash.
   */
  repeatable: z.boolean().default(false),
  /** What the step is called in status and history (default: the command). */
  title: z.string().min(1).optional(),
});

/** A hook: a command string, or the full form. */
export const hookSchema = z.union([
  z
    .string()
    .min(1)
    .transform((run) => hookObject.parse({ run })),
  hookObject,
]);
export type HookConfig = z.infer<typeof hookObject>;

export const CLUSTER_HOOKS = ['stop', 'deploy', 'start'] as const;
export const RELEASE_HOOKS = ['before', 'after', 'rollback'] as const;
export type ClusterHookName = (typeof CLUSTER_HOOKS)[number];
export type ReleaseHookName = (typeof RELEASE_HOOKS)[number];
export type HookName = ClusterHookName | ReleaseHookName;

const clusterHooks = z.strictObject({
  stop: hookSchema.optional(),
  deploy: hookSchema.optional(),
  start: hookSchema.optional(),
});
const hooksSchema = clusterHooks.extend({
  /** Once, before the first cluster is touched. */
  before: hookSchema.optional(),
  /** Once, after the last cluster is back in traffic. */
  after: hookSchema.optional(),
  /** On abort, once per cluster the release deployed to (DAYSHIFT_PREVIOUS_VERSION set when known). */
  rollback: hookSchema.optional(),
});

/**
 * Where a QA check reaches the cluster: `qa`, its QA site (or qa_url); `preview`, the public site's host
 * name with a preview pinning the request to the cluster (src/proxy/preview.ts), so that host-bound
 * cookies, callbacks and CSP are tested as the public will meet them.
 */
const via = z.enum(['qa', 'preview']).default('qa');

export const qaCheckSchema = z.union([
  z.strictObject({
    /** Path requested through the cluster's QA site (or its qa_url). */
    path: z.string().startsWith('/'),
    via,
    /** Expected status code (default: any 2xx). */
    status: z.number().int().min(100).max(599).optional(),
    /** A substring the body must contain; $DAYSHIFT_VERSION and the other release variables are expanded. */
    body: z.string().optional(),
    timeout: duration.default(10_000),
  }),
  z.strictObject({
    /** A command run with DAYSHIFT_QA_URL (and DAYSHIFT_QA_ORIGIN + DAYSHIFT_QA_HOST to reach it); exit 0 passes. */
    run: z.string().min(1),
    via,
    timeout: duration.default(5 * 60_000),
  }),
]);
export type QaCheckConfig = z.infer<typeof qaCheckSchema>;

export type Approval = { mode: 'manual' } | { mode: 'auto'; afterMs: number };

/** `manual`, `auto`, or `auto after 10m`. */
export const approvalSchema = z.string().transform((text, ctx): Approval => {
  const value = text.trim();
  if (value === 'manual') return { mode: 'manual' };
  if (value === 'auto') return { mode: 'auto', afterMs: 0 };
  const match = /^auto after (\S+)$/.exec(value);
  const ms = match ? parseDuration(match[1]!) : undefined;
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected "manual", "auto" or "auto after DURATION" (e.g. "auto after 10m"), found ${JSON.stringify(text)}`,
    });
    return z.NEVER;
  }
  return { mode: 'auto', afterMs: ms };
});

const canaryStep = z.strictObject({
  /** Share of new sessions (percent, 1-100) the released cluster gets at this step. */
  percent: z.number().int().min(1).max(100),
  /** How long to hold this share while analysis watches (0 = go on at once). */
  pause: duration.default(60_000),
});

const analysisSchema = z.strictObject({
  /** The window the rates are computed over (whole seconds; the sampler samples once a second). */
  window: duration.default(30_000),
  /** Highest error rate (5xx and failed exchanges, 0..1) of the released cluster. */
  max_error_rate: z.number().min(0).max(1).default(0.01),
  /** Highest p99 latency of the released cluster as a multiple of the other live clusters' p99. */
  max_p99_ratio: z.number().min(1).default(2),
  /** A p99 below this is never a breach, however it compares (tiny latencies are noise). */
  min_p99: duration.default(100),
  /** Fewer requests than this in the window: the error rate is not judged yet. */
  min_requests: z.number().int().min(0).default(10),
});
export type AnalysisConfig = z.infer<typeof analysisSchema>;

const shiftSchema = z.strictObject({
  /** `swap`: the cluster goes live at once. `canary`: it takes a growing share, watched by analysis. */
  mode: z.enum(['swap', 'canary']).default('swap'),
  steps: z
    .array(canaryStep)
    .min(1)
    .default([
      { percent: 10, pause: 60_000 },
      { percent: 50, pause: 60_000 },
    ]),
  analysis: analysisSchema.prefault({}),
});
export type ShiftConfig = z.infer<typeof shiftSchema>;

/** An HTTP method token (RFC 9110 §9.1), compared in upper case. */
export const httpMethod = z
  .string()
  .regex(/^[A-Za-z]+$/, 'expected an HTTP method such as GET')
  .transform((m) => m.toUpperCase());

/** A share as a fraction 0..1: `0.5%` (percent points), or a number 0..1. */
const share = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*%$/.exec(value.trim()) : undefined;
  const fraction = typeof value === 'number' ? value : match ? Number(match[1]) / 100 : NaN;
  if (!(fraction >= 0 && fraction <= 1)) {
    ctx.addIssue({ code: 'custom', message: `expected a share such as 0.5% or 0.005, found ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return fraction;
});

/**
 * The shadow step: after QA, before approval, a share of public requests is copied to the deployed cluster
 * (out of traffic) and its answers compared with the live ones; thresholds gate the approval.
 */
const shadowStepSchema = z.strictObject({
  /** Share of requests copied (percent). */
  percent: z.number().gt(0).max(100).default(10),
  /** How long the copies run before the comparison is judged. */
  for: duration.refine((ms) => ms > 0, 'expected a duration above 0').default(5 * 60_000),
  /** Methods copied (default shadow.methods: GET and HEAD). */
  methods: z.array(httpMethod).min(1).optional(),
  /** Fewer compared requests than this at the end: the step fails (too little traffic to judge). */
  min_samples: z.number().int().min(0).default(100),
  /** Highest shadow 5xx rate above the live one, in percent points: `0.5%` allows live's + 0.5. */
  max_5xx_increase: share.default(0.005),
  /** Highest shadow p99 latency as a multiple of the live p99 of the same requests. */
  max_p99_ratio: z.number().min(1).default(1.2),
  /** A shadow p99 below this never fails the ratio (tiny latencies are noise). */
  min_p99: duration.default(100),
});
export type ShadowStepConfig = z.infer<typeof shadowStepSchema>;

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const hhmm = z.string().regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'expected a time HH:MM');

const windowSchema = z
  .strictObject({
    days: z.array(z.enum(WEEKDAYS)).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
    /** Local time of day, start inclusive, end exclusive. */
    from: hhmm.default('00:00'),
    to: hhmm.default('24:00'),
  })
  .refine((w) => w.from < w.to, 'expected "from" before "to"');
export type ReleaseWindow = z.infer<typeof windowSchema>;

const windowsSchema = z.strictObject({
  /** IANA time zone the days and hours are in (default: the server's). */
  timezone: z
    .string()
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'expected an IANA time zone such as Europe/Berlin')
    .optional(),
  allow: z.array(windowSchema).min(1),
});
export type WindowsConfig = z.infer<typeof windowsSchema>;

/**
 * A step of the release's database part, run before the first cluster (docs/database.md):
 * `check-replication`, `switchover` (to the one replica, or `{ switchover: { to: NAME } }`), and
 * `{ migrate: { run, on: replica | primary } }`, a command for the server that has that role now.
 */
const migrateSchema = z.strictObject({
  run: z.string().min(1),
  /** Which server the command is for: DAYSHIFT_DB_SERVER/HOST/PORT name the one in that role now. */
  on: z.enum(['replica', 'primary']).default('replica'),
  timeout: duration.default(60 * 60_000),
  repeatable: z.boolean().default(false),
  title: z.string().min(1).optional(),
});
export type MigrateConfig = z.infer<typeof migrateSchema>;

export const dbStepSchema = z.union([
  z.literal('check-replication').transform(() => ({ kind: 'check-replication' as const })),
  z.literal('switchover').transform(() => ({ kind: 'switchover' as const, to: undefined as string | undefined })),
  z
    .strictObject({ switchover: z.strictObject({ to: z.string().min(1) }) })
    .transform((s) => ({ kind: 'switchover' as const, to: s.switchover.to as string | undefined })),
  z.strictObject({ migrate: migrateSchema }).transform((s) => ({ kind: 'migrate' as const, ...s.migrate })),
]);
export type DbStepConfig = z.infer<typeof dbStepSchema>;

const drainOverride = z.strictObject({
  /** A bound session not seen for this long no longer holds the drain (default: drain.session_idle). */
  session_idle: duration.optional(),
  /** The drain ends here whatever is left (default: drain.deadline). */
  deadline: duration.optional(),
});

const healthGateSchema = z.strictObject({
  /** All members must be up by active checks within this time. */
  timeout: duration.default(2 * 60_000),
  /** ...and stay up this long, so a health state from before the restart does not pass the gate. */
  stable: duration.default(5000),
});

/** What a webhook is told about: the release's transitions (docs/releases.md#notifications). */
export const RELEASE_EVENTS = [
  'started',
  'awaiting-approval',
  'step-failed',
  'succeeded',
  'rolled-back',
  'interrupted',
] as const;
export type ReleaseEvent = (typeof RELEASE_EVENTS)[number];

const webhookUrl = z.string().refine((value) => {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, 'expected an http:// or https:// URL, such as https://hooks.slack.com/services/T000/B000/XXXX');

const webhookSchema = z.strictObject({
  url: webhookUrl,
  /** `json`: Dayshift's own document. `slack`: `{ text, blocks }`, as Slack (and Mattermost) incoming webhooks take. */
  format: z.enum(['json', 'slack']).default('json'),
  /** Which events this webhook gets (default: all). */
  events: z.array(z.enum(RELEASE_EVENTS)).min(1).optional(),
  /** Extra request headers, e.g. an Authorization header the receiver wants. */
  headers: z.record(z.string(), z.string()).default({}),
  /** Time limit of one attempt. */
  timeout: duration.refine((ms) => ms > 0, 'expected a duration above 0').default(5000),
  /** Attempts after the first when the receiver is down, slow or answers 5xx or 429. */
  retries: z.number().int().min(0).max(10).default(3),
});
export type WebhookConfig = z.infer<typeof webhookSchema>;

const clusterPlan = z.strictObject({
  drain: drainOverride.optional(),
  hooks: clusterHooks.optional(),
  qa: z.array(qaCheckSchema).optional(),
  approval: approvalSchema.optional(),
  shift: shiftSchema.optional(),
  shadow: shadowStepSchema.optional(),
});
export type ClusterPlanConfig = z.infer<typeof clusterPlan>;

export const releaseSchema = z.strictObject({
  /** Clusters in release order (default: config order). */
  order: z.array(z.string()).optional(),
  drain: drainOverride.prefault({}),
  hooks: hooksSchema.prefault({}),
  health: healthGateSchema.prefault({}),
  qa: z.array(qaCheckSchema).default([]),
  approval: approvalSchema.default({ mode: 'manual' }),
  shift: shiftSchema.prefault({}),
  /** A shadow step for each cluster, between its QA checks and its approval (absent: none). */
  shadow: shadowStepSchema.optional(),
  /** Per-cluster overrides of drain, hooks, qa, approval, shift and shadow. */
  clusters: z.record(z.string(), clusterPlan).default({}),
  windows: windowsSchema.optional(),
  /** Database steps, in order, before the first cluster: the origin comment's ALTER-on-the-replica and switch. */
  database: z.array(dbStepSchema).default([]),
  /** Webhooks told about the release's events, sent beside the release: they never hold it up. */
  notify: z.array(webhookSchema).default([]),
});
export type ReleaseConfig = z.infer<typeof releaseSchema>;

/** Cross-checks the plan against the clusters (run by the config schema, so `dayshift check` reports it). */
export function checkReleasePlan(
  release: ReleaseConfig | undefined,
  clusters: string[],
  databaseServers: string[] | undefined,
  ctx: z.RefinementCtx,
): void {
  if (!release) return;
  release.database.forEach((step, i) => {
    if (!databaseServers)
      ctx.addIssue({
        code: 'custom',
        path: ['release', 'database', i],
        message: 'database steps need a database: section naming the servers',
      });
    else if (step.kind === 'switchover' && step.to !== undefined && !databaseServers.includes(step.to)) {
      ctx.addIssue({
        code: 'custom',
        path: ['release', 'database', i, 'switchover', 'to'],
        message: `unknown database server "${step.to}"; servers: ${databaseServers.join(', ')}`,
      });
    }
  });
  const unknown = (name: string) => `unknown cluster "${name}"; defined clusters: ${clusters.join(', ')}`;
  const seen = new Set<string>();
  release.order?.forEach((name, i) => {
    if (!clusters.includes(name))
      ctx.addIssue({ code: 'custom', path: ['release', 'order', i], message: unknown(name) });
    else if (seen.has(name))
      ctx.addIssue({ code: 'custom', path: ['release', 'order', i], message: `cluster "${name}" is listed twice` });
    seen.add(name);
  });
  for (const name of Object.keys(release.clusters)) {
    if (!clusters.includes(name))
      ctx.addIssue({ code: 'custom', path: ['release', 'clusters', name], message: unknown(name) });
  }
}
