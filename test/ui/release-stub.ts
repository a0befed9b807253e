// Stand-in for the release API routes (GET /api/release, GET /api/releases, POST /api/release/start,
// approve, abort, resume, retry) while the conductor is not on this branch: the same paths and Release
// documents, so the dashboard's release view is tested against the API as specified. Registered only
// when the real routes are absent.
import { z } from 'zod';
import type { AdminServer } from '../../src/control/admin-server.js';
import { HttpError } from '../../src/control/router.js';
import type { Release, ReleaseStep } from '../../src/release/types.js';

export interface ReleaseStub {
  /** Moves the current release from its drain to the approval gate, as the conductor would. */
  reachApproval(): void;
}

/** Fields the conductor branch adds to the shared Release type (who approved, who aborted). */
type StubStep = ReleaseStep & { approvedBy?: string };
type StubRelease = Omit<Release, 'steps'> & { steps: StubStep[]; abortedBy?: string };

const step = (id: string, kind: ReleaseStep['kind'], title: string): StubStep => ({ id, kind, cluster: 'prod-a', title, state: 'pending', repeatable: true });

/** Undefined when the real release API is registered (then the tests drive the real conductor). */
export function registerReleaseStub(server: AdminServer, qaUrls: Record<string, string>): ReleaseStub | undefined {
  if (server.router.match('GET', '/api/release') !== undefined) return undefined;
  const history: StubRelease[] = [];
  let current: StubRelease | null = null;
  const active = () => current !== null && ['running', 'awaiting-approval', 'failed', 'interrupted'].includes(current.state);
  const r = server.router;
  r.add({ method: 'GET', path: '/api/release', summary: 'Current (or last) release (stub)', tag: 'release' }, () => {
    if (!current) throw new HttpError(404, 'there has been no release yet');
    return current;
  });
  r.add({ method: 'GET', path: '/api/releases', summary: 'Release history, newest first (stub)', tag: 'release' }, () => [...history].reverse());
  r.add({ method: 'POST', path: '/api/release/start', summary: 'Start (stub)', body: z.strictObject({ version: z.string().min(1) }), tag: 'release' }, ({ body, actor }) => {
    if (active()) throw new HttpError(409, `release ${current!.version} is in progress (started by ${current!.startedBy})`);
    current = {
      id: `r${history.length + 1}`,
      version: body.version,
      state: 'running',
      startedBy: actor.who,
      startedAt: new Date().toISOString(),
      before: { 'prod-a': { traffic: 'live', weight: 1 }, 'prod-b': { traffic: 'live', weight: 1 } },
      steps: [
        step('prod-a:drain', 'drain', 'drain prod-a (idle 5m, deadline 30m)'),
        step('prod-a:out', 'out', 'take prod-a out'),
        step('prod-a:deploy', 'hook', 'deploy prod-a: echo deploying $DAYSHIFT_VERSION to $DAYSHIFT_CLUSTER'),
        step('prod-a:health', 'health-gate', 'health gate prod-a (all members up)'),
        step('prod-a:qa', 'qa-checks', 'QA checks on prod-a'),
        step('prod-a:approval', 'approval', 'approval: manual'),
        step('prod-a:shift', 'shift', 'shift traffic to prod-a (swap)'),
      ],
      current: 0,
      drain: { target: 'prod-a', drained: false, reason: 'waiting', inFlight: 1, sessions: 4, oldestIdleMs: 12_000, tunnels: 0, since: new Date().toISOString(), remainingMs: 1_790_000 },
      qaUrls,
    };
    Object.assign(current.steps[0]!, { state: 'running', startedAt: current.startedAt });
    history.push(current);
    return current;
  });
  r.add({ method: 'POST', path: '/api/release/approve', summary: 'Approve (stub)', body: z.strictObject({}), tag: 'release' }, ({ actor }) => {
    if (current?.state !== 'awaiting-approval') throw new HttpError(409, 'no release is waiting for approval');
    const now = new Date().toISOString();
    for (const s of current.steps.slice(current.current)) Object.assign(s, { state: 'succeeded', startedAt: s.startedAt ?? now, endedAt: now });
    current.steps[current.current]!.approvedBy = actor.who;
    Object.assign(current, { state: 'succeeded', endedAt: now, current: current.steps.length - 1 });
    return current;
  });
  r.add({ method: 'POST', path: '/api/release/abort', summary: 'Abort (stub)', body: z.strictObject({}), tag: 'release' }, ({ actor }) => {
    if (!active()) throw new HttpError(409, 'no release in progress');
    const now = new Date().toISOString();
    const step = current!.steps[current!.current]!;
    Object.assign(step, { state: 'failed', endedAt: now, detail: 'aborted' });
    Object.assign(current!, { state: 'aborted', endedAt: now, abortedBy: actor.who, reason: 'aborted: traffic returned to the clusters live before the release' });
    return current;
  });
  for (const verb of ['resume', 'retry']) {
    r.add({ method: 'POST', path: `/api/release/${verb}`, summary: `${verb} (stub)`, tag: 'release' }, () => {
      throw new HttpError(409, `nothing to ${verb}`);
    });
  }
  return {
    reachApproval() {
      if (current?.state !== 'running') throw new Error('no running release');
      const at = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
      const done: [number, number, Partial<ReleaseStep>][] = [
        [400, 250, { detail: 'drained: no session seen for 5m' }],
        [250, 249, {}],
        [249, 130, { output: [`deploying ${current.version} to prod-a`] }],
        [130, 100, {}],
        [100, 90, { output: ['GET / → 200', 'GET /checkout → 200'] }],
      ];
      done.forEach(([from, to, extra], i) => Object.assign(current!.steps[i]!, { state: 'succeeded', startedAt: at(from), endedAt: at(to), ...extra }));
      Object.assign(current.steps[5]!, { state: 'waiting', startedAt: at(90) });
      Object.assign(current, { state: 'awaiting-approval', current: 5, startedAt: at(400), drain: { ...current.drain!, drained: true, reason: 'idle', sessions: 0, inFlight: 0 } });
    },
  };
}
