// The admin API of previews (`dayshift preview`, the dashboard): make a link, list, revoke.
import { z } from 'zod';
import { cidr } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { ControlPlane } from '../control/plane.js';
import { PreviewError } from '../control/errors.js';
import { listPreviews, releasedVersion, type PreviewLink } from '../control/previews.js';
import { StoreUnavailableError } from '../store/errors.js';
import { HttpError } from './router.js';
import type { AdminServer } from './server.js';

/** Checked as the config's are: a stored entry the proxy cannot read would fail every snapshot build. */
const allowEntry = z.union([cidr, z.string().regex(/^site:[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)], {
  error: 'expected an address, a CIDR block or site:NAME',
});

export function registerPreviewApi(server: AdminServer, plane: ControlPlane): void {
  const r = server.router;
  const tag = 'previews';
  r.add(
    {
      method: 'POST',
      path: '/api/previews',
      summary:
        'A signed, expiring link that pins the browser opening it to the cluster on the public site, even while the cluster is out',
      body: z.strictObject({
        cluster: z.string().min(1),
        for: z
          .string()
          .refine((v) => parseDuration(v) !== undefined, 'expected a duration such as 30m or 2h')
          .optional(),
        site: z.string().min(1).optional(),
        allow: z.array(allowEntry).optional(),
        version: z.string().min(1).max(100).optional(),
      }),
      tag,
    },
    async ({ body, actor }): Promise<PreviewLink> => {
      const version = body.version ?? (await releasedVersion(plane.store, body.cluster).catch(() => undefined));
      return previewGuard(() =>
        plane.openPreview(actor, {
          cluster: body.cluster,
          ...(body.for !== undefined ? { forMs: parseDuration(body.for)! } : {}),
          ...(body.site !== undefined ? { site: body.site } : {}),
          ...(body.allow !== undefined ? { allow: body.allow } : {}),
          ...(version !== undefined ? { version } : {}),
        }),
      );
    },
  );
  r.add({ method: 'GET', path: '/api/previews', summary: 'The previews not yet expired nor revoked', tag }, () =>
    listPreviews(plane.state.previews, Date.now()),
  );
  r.add(
    {
      method: 'DELETE',
      path: '/api/previews/:id',
      summary: 'Revoke a preview: every instance stops pinning its browsers',
      tag,
    },
    ({ params, actor }) => previewGuard(() => plane.revokePreview(actor, params.id!)),
  );
}

async function previewGuard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PreviewError) throw new HttpError(err.message.startsWith('no preview') ? 404 : 422, err.message);
    if (err instanceof StoreUnavailableError) throw new HttpError(503, `the change was not made: ${err.message}`);
    throw err;
  }
}
