// The admin API of shadow traffic (`dayshift shadow`, the dashboard): start, read the comparison, stop.
import { z } from 'zod';
import { httpMethod } from '../config/release-schema.js';
import { parseDuration } from '../config/units.js';
import type { ControlPlane } from '../control/plane.js';
import type { ShadowReport } from '../control/shadow.js';
import { HttpError } from './router.js';
import type { AdminServer } from './server.js';

export function registerShadowApi(server: AdminServer, plane: ControlPlane): void {
  const r = server.router;
  const tag = 'shadow';
  r.add(
    {
      method: 'POST',
      path: '/api/shadow',
      summary:
        'Copy a share of the public requests other clusters answer to a cluster out of traffic, and compare its answers',
      body: z.strictObject({
        cluster: z.string().min(1),
        percent: z.number().gt(0).max(100),
        for: z
          .string()
          .refine((v) => parseDuration(v) !== undefined, 'expected a duration such as 5m or 1h')
          .optional(),
        methods: z.array(httpMethod).min(1).optional(),
      }),
      tag,
    },
    async ({ body, actor }): Promise<ShadowReport> => {
      await plane.startShadow(actor, {
        cluster: body.cluster,
        percent: body.percent,
        ...(body.for !== undefined ? { forMs: parseDuration(body.for)! } : {}),
        ...(body.methods !== undefined ? { methods: body.methods } : {}),
      });
      return plane.shadowReport()!;
    },
  );
  r.add(
    {
      method: 'GET',
      path: '/api/shadow',
      summary: "The shadow in force or last in force, with this instance's comparison of live and shadow answers",
      tag,
    },
    () => {
      const report = plane.shadowReport();
      if (!report) throw new HttpError(404, 'no shadow has run: start one with `dayshift shadow CLUSTER --percent 10`');
      return report;
    },
  );
  r.add(
    {
      method: 'DELETE',
      path: '/api/shadow',
      summary: 'Stop the shadow in force on every instance (its figures stay readable)',
      query: { cluster: 'stop only the shadow to this cluster' },
      tag,
    },
    async ({ query, actor }) => {
      const cluster = query.get('cluster') ?? undefined;
      const stopped = await plane.stopShadow(actor, cluster);
      return { stopped, report: plane.shadowReport() ?? null };
    },
  );
}
