// The upgrade route of the admin API: what `dayshift upgrade` calls.
import { once } from 'node:events';
import { z } from 'zod';
import type { AdminServer } from './server.js';
import type { Upgrader } from '../upgrade/upgrade.js';

export function registerUpgradeApi(server: AdminServer, upgrader: Upgrader): void {
  server.router.add(
    {
      method: 'POST',
      path: '/api/upgrade',
      summary:
        'Start a new generation of Dayshift from the code now installed, on the same listening sockets; answers once it serves (this one then finishes its requests and exits). 409: refused, nothing started; 502: the new generation failed, this one serves on',
      body: z.strictObject({ timeoutMs: z.number().int().positive().max(600_000).optional() }),
      response: 'old and new version and pid',
      tag: 'config',
    },
    ({ body, actor, res }) =>
      // This generation retires once the answer has gone out.
      upgrader.upgrade(actor, {
        ...(body.timeoutMs ? { timeoutMs: body.timeoutMs } : {}),
        answered: once(res, 'close'),
      }),
  );
}
