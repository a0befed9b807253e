// Release notifications: the release's events (started, waiting for approval, a step failed, succeeded,
// rolled back, interrupted), derived from the conductor's updates by comparing each release with the
// one seen before, and sent to the plan's webhooks (release.notify) as JSON or in Slack's form.
// Only the instance that runs the release (holds its lock) sends, and only for transitions it sees
// happen: another instance following the journal, or a restart that finds a release waiting, sends
// nothing again.
import type { DayshiftConfig } from '../config/schema.js';
import type { ReleaseEvent, WebhookConfig } from '../config/release-schema.js';
import type { Logger } from 'pino';
import type { Conductor } from './conductor.js';
import { clusterPlan, releaseConfig } from './plan.js';
import type { Release, ReleaseState, ReleaseStep, StepState } from './types.js';
import type { WebhookMessage, WebhookSender } from './webhooks.js';

/** The `json` format's document. Every key is always there (null when it does not apply). */
export interface ReleaseNotification {
  event: ReleaseEvent;
  release: string;
  version: string;
  /** The release's state after the event. */
  status: ReleaseState;
  /** The clusters the release covers, in release order. */
  clusters: string[];
  /** The cluster of the step the event is about. */
  cluster: string | null;
  step: { id: string; title: string; state: StepState; detail: string | null } | null;
  /** Why it failed, was aborted or interrupted (with the rollback's notes). */
  reason: string | null;
  startedBy: string;
  /** awaiting-approval with `auto after`: when it approves itself. */
  approvesAt: string | null;
  /** When the event happened (ISO). */
  time: string;
  /** The dashboard's release view, where it can be approved, retried or aborted. */
  dashboard: string;
}

/** The events between two updates of one release: `previous` is undefined when it is the first seen. */
export function releaseEvents(
  previous: Release | undefined,
  next: Release,
  config: DayshiftConfig,
): { event: ReleaseEvent; step?: ReleaseStep }[] {
  const current = next.steps[next.current];
  const events: { event: ReleaseEvent; step?: ReleaseStep }[] = [];
  // A release that has never run a step: only start() writes one.
  if (!previous && next.state === 'running' && next.steps.every((s) => !s.startedAt)) events.push({ event: 'started' });
  if (next.state === 'interrupted' && previous?.state !== 'interrupted')
    events.push({ event: 'interrupted', ...(current ? { step: current } : {}) });
  if (!previous || previous.state === next.state) return events;
  if (next.state === 'awaiting-approval' && current?.kind === 'approval') {
    // An approval step keeps its start time through a resume: the first wait is the one to tell.
    const before = previous.steps.find((s) => s.id === current.id);
    const approval = clusterPlan(config, current.cluster).approval;
    if (!before?.startedAt && !(approval.mode === 'auto' && approval.afterMs === 0))
      events.push({ event: 'awaiting-approval', step: current });
  }
  if (next.state === 'failed' && current) events.push({ event: 'step-failed', step: current });
  if (next.state === 'succeeded') events.push({ event: 'succeeded' });
  if (next.state === 'aborted') events.push({ event: 'rolled-back', ...(current ? { step: current } : {}) });
  return events;
}

export function notification(
  event: ReleaseEvent,
  r: Release,
  step: ReleaseStep | undefined,
  config: DayshiftConfig,
  dashboard: string,
): ReleaseNotification {
  let approvesAt: string | null = null;
  if (event === 'awaiting-approval' && step?.kind === 'approval' && step.startedAt) {
    const approval = clusterPlan(config, step.cluster).approval;
    if (approval.mode === 'auto') approvesAt = new Date(Date.parse(step.startedAt) + approval.afterMs).toISOString();
  }
  return {
    event,
    release: r.id,
    version: r.version,
    status: r.state,
    clusters: [...new Set(r.steps.flatMap((s) => clusterOf(s) ?? []))],
    cluster: (step && clusterOf(step)) ?? null,
    step: step ? { id: step.id, title: step.title, state: step.state, detail: step.detail ?? null } : null,
    reason: r.reason ?? null,
    startedBy: r.startedBy,
    approvesAt,
    time: new Date().toISOString(),
    dashboard,
  };
}

/** The cluster a step acts on; release-wide steps (window, before and after hooks, database) have none. */
function clusterOf(step: ReleaseStep): string | undefined {
  return 'cluster' in step ? step.cluster : undefined;
}

/** The `slack` format: `text` for notifications and clients without blocks, and the same as blocks. */
export function slackMessage(n: ReleaseNotification): { text: string; blocks: unknown[] } {
  const what = slackText(n);
  const link = `<${n.dashboard}|${n.event === 'awaiting-approval' ? 'Approve in the dashboard' : 'Open the dashboard'}>`;
  return {
    text: `${what} ${n.dashboard}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${what}\n${link}` } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: escape(`release ${n.release} · started by ${n.startedBy} · ${n.time}`) }],
      },
    ],
  };
}

function slackText(n: ReleaseNotification): string {
  const release = `Release of version *${escape(n.version)}*`;
  const step = n.step ? `"${escape(n.step.title)}"` : 'a step';
  switch (n.event) {
    case 'started':
      return `${release} started (${escape(n.clusters.join(', '))}).`;
    case 'awaiting-approval':
      return `${release} waits for approval: ${escape(n.step?.title ?? '')}.${n.approvesAt ? ` It approves itself at ${n.approvesAt}.` : ''}`;
    case 'step-failed':
      return `${release} failed at ${step}: ${escape(n.step?.detail ?? n.reason ?? 'no detail')}. Traffic stays on the old version: retry or abort.`;
    case 'succeeded':
      return `${release} succeeded.`;
    case 'rolled-back':
      return `${release} was aborted and rolled back: ${escape(n.reason ?? '')}.`;
    case 'interrupted':
      return `${release} was interrupted: ${escape(n.reason ?? '')}.`;
  }
}

/** Slack's mrkdwn treats &, < and > as markup. */
function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export interface NotifierOptions {
  config: () => DayshiftConfig;
  /** The dashboard's address as people open it. */
  dashboardUrl: () => string;
  sender: WebhookSender;
  logger: Logger;
}

/** Sends the release's events to the plan's webhooks as the conductor reports them. */
export class ReleaseNotifier {
  /** The release as last reported, the "before" of the next update. */
  private last: Release | undefined;

  constructor(private readonly options: NotifierOptions) {}

  /**
   * Subscribes to the conductor's updates; call it before the conductor recovers its journal, so that
   * a release it finds cut short by a crash is told as interrupted. The listener runs inside the
   * conductor's journal writes: it only queues, and nothing it does can throw into them.
   */
  watch(conductor: Conductor): void {
    conductor.on('update', (next) => {
      try {
        this.updated(next, conductor.runsRelease);
      } catch (err) {
        this.options.logger.error({ err }, 'release notifications: could not queue an event');
      }
    });
  }

  /**
   * The release the conductor holds once open, if it reported nothing while opening: the next update
   * compares with it, so an abort of a release interrupted before this start is not told as a new
   * interruption.
   */
  baseline(release: Release | undefined): void {
    this.last ??= release;
  }

  private updated(next: Release, runsRelease: boolean): void {
    const previous = this.last?.id === next.id ? this.last : undefined;
    this.last = next;
    const config = this.options.config();
    const hooks = releaseConfig(config).notify;
    if (hooks.length === 0 || !runsRelease) return;
    const dashboard = `${this.options.dashboardUrl().replace(/\/+$/, '')}/#release`;
    for (const { event, step } of releaseEvents(previous, next, config)) {
      const n = notification(event, next, step, config, dashboard);
      for (const hook of hooks)
        if (!hook.events || hook.events.includes(event)) this.options.sender.send(message(hook, n));
    }
  }
}

function message(hook: WebhookConfig, n: ReleaseNotification): WebhookMessage {
  return {
    url: hook.url,
    headers: hook.headers,
    body: JSON.stringify(hook.format === 'slack' ? slackMessage(n) : n),
    timeoutMs: hook.timeout,
    retries: hook.retries,
    about: `release ${n.release} ${n.event}`,
  };
}
