// The control plane's admin API routes (under /api/). The CLI and the dashboard use exactly these.
import { z } from 'zod';
import { ConfigError } from '../config/errors.js';
import { parseDuration } from '../config/units.js';
import { DriverUnsupportedError } from '../drivers/errors.js';
import { ADMIN_STATES, TRAFFIC_STATES } from '../model.js';
import { StoreUnavailableError } from '../store/errors.js';
import { startEvents, type AdminServer } from './server.js';
import type { AuditLog } from '../control/audit.js';
import type { ControlPlane, DrainProgress } from '../control/plane.js';
import { HttpError } from './router.js';
import { statusReport, type StatusReport, type StatusSources } from '../observe/status-report.js';
import { StatusFeed, type FeedClient } from '../observe/status-feed.js';
import type { Target } from '../control/targets.js';

const durationText = z
  .string()
  .refine((v) => parseDuration(v) !== undefined, 'expected a duration such as 30s, 10m or 1h');
/** A drain's deadline (default drain.deadline), counted from when it started: when it passes, the target's open tunnels are closed (audited). */
const drainDeadline = durationText
  .optional()
  .describe(
    "with draining: the drain's deadline (default drain.deadline), counted from when it started; at it the open tunnels are closed",
  );
const deadlineOnlyWhenDraining = { message: 'deadline applies to state "draining" only', path: ['deadline'] };
const deadlineMsOf = (body: { deadline?: string | undefined }) =>
  body.deadline !== undefined ? { deadlineMs: parseDuration(body.deadline)! } : {};

/** Registers the routes; returns the feed behind /api/events (tests count its reports). */
export function registerControlApi(
  server: AdminServer,
  plane: ControlPlane,
  audit: AuditLog,
  sources: StatusSources = {},
): StatusFeed<StatusReport> {
  const r = server.router;
  const target = (text: string): Target => plane.target(text);
  /** A cluster route's :cluster, which must name a cluster (a decoded "%2F" would name a member). */
  const clusterOf = (text: string): string => {
    const t = target(text);
    if (t.kind !== 'cluster')
      throw new HttpError(
        400,
        `expected CLUSTER, got the member ${t.key}: members have /api/members/CLUSTER/MEMBER/state and /weight`,
      );
    return t.cluster;
  };

  r.add(
    {
      method: 'GET',
      path: '/api/status',
      summary: 'Sites, clusters and members with live figures; the worker processes',
      tag: 'status',
    },
    () => statusReport(plane, sources),
  );

  r.add(
    {
      method: 'GET',
      path: '/api/history/:cluster',
      summary: 'Per-second requests/s, errors and latency of a cluster over the last minutes',
      tag: 'status',
    },
    ({ params }) => {
      if (!Object.hasOwn(plane.config.clusters, params.cluster!))
        throw new HttpError(404, `unknown cluster ${params.cluster}`);
      return sources.sampler?.history(params.cluster!) ?? [];
    },
  );

  const feed = new StatusFeed({
    build: () => statusReport(plane, sources),
    watch: (listener) => {
      plane.on('change', listener);
      return () => plane.off('change', listener);
    },
    intervalMs: 1000,
  });
  r.add(
    {
      method: 'GET',
      path: '/api/events',
      summary: 'Server-sent events: `status` every second and on every change',
      tag: 'status',
    },
    ({ req, res }) => {
      const write = startEvents(req, res, () => feed.leave(client));
      // A slow reader skips reports rather than have them pile up in memory.
      const client: FeedClient<StatusReport> = {
        send: (report) => write('status', report),
        blocked: () => res.writableNeedDrain,
      };
      feed.join(client);
      return undefined;
    },
  );

  r.add(
    {
      method: 'POST',
      path: '/api/clusters/:cluster/traffic',
      summary:
        "Set a cluster's traffic state (live, draining, out) and optionally its weight; a drain may have a deadline that closes its open tunnels",
      body: z
        .strictObject({
          state: z.enum(TRAFFIC_STATES),
          weight: z.number().int().min(0).max(1000).optional(),
          force: z.boolean().optional(),
          deadline: drainDeadline,
        })
        .refine((b) => b.deadline === undefined || b.state === 'draining', deadlineOnlyWhenDraining),
      tag: 'traffic',
    },
    ({ params, body, actor }) =>
      guard(() =>
        plane.setTraffic(actor, clusterOf(params.cluster!), body.state, {
          ...(body.weight !== undefined ? { weight: body.weight } : {}),
          ...(body.force !== undefined ? { force: body.force } : {}),
          ...deadlineMsOf(body),
        }),
      ),
  );

  r.add(
    {
      method: 'POST',
      path: '/api/clusters/:cluster/weight',
      summary: "Set a cluster's weight among live clusters",
      body: z.strictObject({ weight: z.number().int().min(0).max(1000), force: z.boolean().optional() }),
      tag: 'traffic',
    },
    ({ params, body, actor }) => {
      return guard(() => plane.setClusterWeight(actor, clusterOf(params.cluster!), body.weight, body));
    },
  );

  r.add(
    {
      method: 'POST',
      path: '/api/members/:cluster/:member/state',
      summary:
        "Set a member's admin state (ready, draining, disabled, standby); a drain may have a deadline that closes its open tunnels",
      body: z
        .strictObject({ state: z.enum(ADMIN_STATES), force: z.boolean().optional(), deadline: drainDeadline })
        .refine((b) => b.deadline === undefined || b.state === 'draining', deadlineOnlyWhenDraining),
      tag: 'traffic',
    },
    ({ params, body, actor }) =>
      guard(() =>
        plane.setMemberState(actor, target(`${params.cluster}/${params.member}`), body.state, {
          ...(body.force !== undefined ? { force: body.force } : {}),
          ...deadlineMsOf(body),
        }),
      ),
  );

  r.add(
    {
      method: 'POST',
      path: '/api/members/:cluster/:member/weight',
      summary: "Set a member's weight",
      body: z.strictObject({ weight: z.number().int().min(0).max(1000), force: z.boolean().optional() }),
      tag: 'traffic',
    },
    ({ params, body, actor }) => {
      const t = target(`${params.cluster}/${params.member}`);
      if (t.kind !== 'member') throw new HttpError(400, 'expected CLUSTER/MEMBER');
      return guard(() => plane.setMemberWeight(actor, t.key, body.weight, body));
    },
  );

  r.add(
    {
      method: 'GET',
      path: '/api/drain/:target',
      summary:
        'Drain progress of CLUSTER or CLUSTER~MEMBER; ?wait=1 long-polls until drained (or deadline); Accept: text/event-stream streams progress. It only reports: tunnels are closed by the deadline the drain was started with',
      query: {
        wait: '1 to wait until drained',
        deadline:
          "report against this deadline (counted from the drain's start, e.g. 10m) instead of the drain's own; nothing is closed at it",
        timeout: 'long-poll time limit (default 60s, at most 10m)',
      },
      tag: 'traffic',
    },
    async ({ req, res, params, query }) => {
      const t = target(params.target!.replace('~', '/'));
      const deadlineText = query.get('deadline');
      const deadlineMs = deadlineText ? parseDuration(deadlineText) : undefined;
      if (deadlineText && deadlineMs === undefined)
        throw new HttpError(400, `bad deadline "${deadlineText}": expected a duration such as 10m`);
      const wantsStream = (req.headers.accept ?? '').includes('text/event-stream');
      if (!wantsStream && query.get('wait') !== '1')
        return plane.drainProgress(t, deadlineMs !== undefined ? { deadlineMs } : {});
      const abort = new AbortController();
      req.on('close', () => abort.abort(new Error('client went away')));
      if (wantsStream) {
        const send = startEvents(req, res, () => abort.abort());
        const final = await plane
          .waitDrained(t, {
            ...(deadlineMs !== undefined ? { deadlineMs } : {}),
            signal: abort.signal,
            onProgress: (p) => send('progress', p),
          })
          .catch(() => undefined);
        if (final) send('done', final);
        res.end();
        return undefined;
      }
      const limit = Math.min(parseDuration(query.get('timeout') ?? '60s') ?? 60_000, 10 * 60_000);
      const timer = setTimeout(() => abort.abort(new Error('long-poll limit')), limit);
      let last: DrainProgress | undefined;
      try {
        return await plane.waitDrained(t, {
          ...(deadlineMs !== undefined ? { deadlineMs } : {}),
          signal: abort.signal,
          onProgress: (p) => (last = p),
        });
      } catch {
        return last ?? (await plane.drainProgress(t, deadlineMs !== undefined ? { deadlineMs } : {}));
      } finally {
        clearTimeout(timer);
      }
    },
  );

  r.add(
    {
      method: 'POST',
      path: '/api/sites/:site/maintenance',
      summary: 'Maintenance mode: every request on the site gets a 503 page with this message',
      body: z.strictObject({
        message: z.string().min(1).max(2000),
        until: z.iso.datetime().optional(),
        for: durationText.optional(),
      }),
      tag: 'sites',
    },
    ({ params, body, actor }) => {
      const until =
        body.until ?? (body.for ? new Date(Date.now() + parseDuration(body.for)!).toISOString() : undefined);
      return guard(() =>
        plane.setMaintenance(actor, params.site!, { message: body.message, ...(until ? { until } : {}) }),
      );
    },
  );
  r.add(
    { method: 'DELETE', path: '/api/sites/:site/maintenance', summary: 'End maintenance mode', tag: 'sites' },
    ({ params, actor }) => guard(() => plane.setMaintenance(actor, params.site!, undefined)),
  );

  r.add(
    {
      method: 'POST',
      path: '/api/sites/:site/pause',
      summary:
        'Hold new requests on the site for up to `for`; then serve them (then=serve) or answer 503 (then=reject)',
      body: z.strictObject({ for: durationText.default('30s'), then: z.enum(['serve', 'reject']).default('serve') }),
      tag: 'sites',
    },
    ({ params, body, actor }) =>
      guard(() =>
        plane.setPause(actor, params.site!, {
          until: new Date(Date.now() + parseDuration(body.for)!).toISOString(),
          then: body.then,
        }),
      ),
  );
  r.add(
    {
      method: 'DELETE',
      path: '/api/sites/:site/pause',
      summary: 'Resume a paused site: held requests are served',
      tag: 'sites',
    },
    ({ params, actor }) => guard(() => plane.setPause(actor, params.site!, undefined)),
  );

  r.add(
    {
      method: 'POST',
      path: '/api/reload',
      summary: 'Re-read the config file; a bad one is refused and the running one stays',
      tag: 'config',
    },
    async ({ actor }) => {
      try {
        const loaded = await plane.reload(actor);
        return { ok: true, file: loaded.file };
      } catch (err) {
        if (err instanceof ConfigError)
          throw new HttpError(422, `configuration refused, the running one stays:\n${err.message}`, err.problems);
        // A config the load balancer cannot take (weights out of its range, say) is as bad as an invalid one.
        if (err instanceof DriverUnsupportedError)
          throw new HttpError(422, `configuration refused, the running one stays: ${err.message}`);
        throw err;
      }
    },
  );

  r.add(
    {
      method: 'GET',
      path: '/api/audit',
      summary: 'The most recent audit entries',
      query: { limit: 'how many (default 100)' },
      tag: 'config',
    },
    ({ query }) => audit.tail(Math.min(10_000, Number(query.get('limit') ?? 100) || 100)),
  );
  return feed;
}

/** A change the store did not take says so; other errors answer by their code (statusOf in router.ts). */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    // Nothing was applied: a change is acknowledged only once the store has it.
    if (err instanceof StoreUnavailableError) throw new HttpError(503, `the change was not made: ${err.message}`);
    throw err;
  }
}
