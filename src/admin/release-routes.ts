// The release routes of the admin API: what `dayshift release …` and the dashboard call.
import { z } from 'zod';
import { startEvents, type AdminServer } from './server.js';
import { HttpError } from './router.js';
import type { DayshiftConfig } from '../config/schema.js';
import { releaseAdvice } from '../release/advice.js';
import type { Conductor } from '../release/conductor.js';
import type { Release } from '../release/types.js';

/** `config`: the configuration in force, for the advice a start or plan answers with (advice.ts). */
export function registerReleaseApi(server: AdminServer, conductor: Conductor, config: () => DayshiftConfig): void {
  const r = server.router;
  const tag = 'release';

  r.add(
    {
      method: 'GET',
      path: '/api/release',
      summary: 'The current (or last) release with its steps; 404 when there has been none',
      tag,
    },
    () => {
      const current = conductor.current();
      if (!current)
        throw new HttpError(404, 'there has been no release yet: start one with `dayshift release start --version V`');
      return current;
    },
  );

  r.add({ method: 'GET', path: '/api/releases', summary: 'Every release in the journal, newest first', tag }, () =>
    conductor.history(),
  );

  r.add(
    {
      method: 'POST',
      path: '/api/release/start',
      summary: 'Start a release of a version; with plan=true only return the steps it would run',
      body: z.strictObject({
        version: z.string().min(1),
        plan: z.boolean().optional(),
        waitWindow: z.boolean().optional(),
      }),
      tag,
    },
    async ({ body, actor }) => {
      const warnings = releaseAdvice(config());
      if (body.plan) return { version: body.version, steps: conductor.plan(body.version), warnings };
      return { ...(await conductor.start(actor, body.version, { waitWindow: body.waitWindow ?? false })), warnings };
    },
  );

  r.add(
    {
      method: 'POST',
      path: '/api/release/approve',
      summary: 'Approve the step that waits for approval',
      body: z.strictObject({}),
      tag,
    },
    ({ actor }) => conductor.approve(actor),
  );
  r.add(
    {
      method: 'POST',
      path: '/api/release/abort',
      summary: 'Abort: rollback hook, then traffic back to the clusters live before the release',
      body: z.strictObject({}),
      tag,
    },
    ({ actor }) => conductor.abort(actor),
  );
  r.add(
    {
      method: 'POST',
      path: '/api/release/resume',
      summary:
        'Continue an interrupted release at the step it stopped in (yes=true to repeat a step that is not safe to repeat)',
      body: z.strictObject({ yes: z.boolean().optional() }),
      tag,
    },
    ({ body, actor }) => conductor.resume(actor, { yes: body.yes ?? false }),
  );
  r.add(
    { method: 'POST', path: '/api/release/retry', summary: 'Re-run the failed step', body: z.strictObject({}), tag },
    ({ actor }) => conductor.retry(actor),
  );

  r.add(
    {
      method: 'GET',
      path: '/api/release/events',
      summary: 'Server-sent events: `release` with the whole document on every change and while steps progress',
      tag,
    },
    ({ req, res }) => {
      const onUpdate = (release: Release) => send('release', release);
      const send = startEvents(req, res, () => conductor.off('update', onUpdate));
      conductor.on('update', onUpdate);
      const current = conductor.current();
      if (current) send('release', current);
      return undefined;
    },
  );
}
