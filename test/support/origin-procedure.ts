// The origin document's procedure, run against a Dayshift under load: drain prod-a and wait, take it
// out, stop and restart its members, make it live, drain prod-b and wait, take it out. Used by the
// zero-drop test (which asserts on the result) and by `npm run bench` (which prints it).
import http from 'node:http';
import type { StatusReport } from '../../src/observe/status-report.js';
import { Load, type Sample } from './load.js';
import { startMember, type TestMember } from './members.js';
import { waitFor } from './proxy.js';
import { startTestDayshift, type TestDayshift } from './dayshift.js';

/** A Tomcat-like member: a request without a session gets JSESSIONID=<n>.<route>; /health answers ok. */
export function appMember(route: string, port = 0): Promise<TestMember> {
  let next = 0;
  return startMember(
    route,
    (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/health') return res.end('ok');
        const fresh = !/JSESSIONID=/.test(req.headers.cookie ?? '');
        res.writeHead(200, {
          'content-type': 'text/plain',
          ...(fresh ? { 'set-cookie': `JSESSIONID=S${next++}.${route}; Path=/` } : {}),
        });
        res.end(`${route} ok`);
      });
    },
    port,
  );
}

export interface Change {
  what: string;
  /** performance.now() when asked for, and when the API confirmed it. */
  asked: number;
  at: number;
}

export interface ProcedureResult {
  samples: Sample[];
  failed: Sample[];
  /** New (unbound) requests sent after a cluster's drain call returned that it served anyway. */
  strays: Sample[];
  /** Sticky sessions served by more than one member. */
  movedSessions: number;
  sessions: number;
  changes: Change[];
  /** Longest interval without a completed response within ±500 ms of each change. */
  stalls: { what: string; ms: number }[];
}

export class OriginSetup {
  private constructor(
    readonly ds: TestDayshift,
    readonly members: TestMember[],
  ) {}

  static async start(): Promise<OriginSetup> {
    const members = await Promise.all(['a1', 'a2', 'b1', 'b2'].map((r) => appMember(r)));
    const ds = await startTestDayshift({
      clusters: {
        'prod-a': {
          members: [
            { url: members[0]!.url, route: 'a1' },
            { url: members[1]!.url, route: 'a2' },
          ],
        },
        'prod-b': {
          members: [
            { url: members[2]!.url, route: 'b1' },
            { url: members[3]!.url, route: 'b2' },
          ],
        },
      },
      // Stopped members are refused at once, so a generous timeout costs nothing and a busy machine's slow
      // check cannot mark a live member down (fall: 1).
      health: { path: '/health', interval: '200ms', timeout: '2s', rise: 1, fall: 1 },
      drain: { session_idle: '500ms', deadline: '30s' },
      sites: {
        public: {
          hosts: ['example.com'],
          routes: [
            {
              path: '/',
              clusters: ['prod-a', 'prod-b'],
              balance: 'least-busy',
              sticky: { mode: 'route', cookie: 'JSESSIONID', path_param: 'jsessionid' },
            },
          ],
        },
      },
    });
    return new OriginSetup(ds, members);
  }

  async stop(): Promise<void> {
    await this.ds.stop();
    await Promise.all(this.members.map((m) => m.close()));
  }

  /** Runs the procedure under the given load (started by the caller, stopped here). */
  async run(load: Load, onChange: (change: Change) => void = () => undefined): Promise<ProcedureResult> {
    const ds = this.ds;
    const clusterOf = (member: string) => (member.startsWith('a') ? 'prod-a' : member.startsWith('b') ? 'prod-b' : '?');
    const drainedAt: Record<string, number> = {};
    const changes: Change[] = [];
    const act = async (what: string, method: string, path: string, body?: unknown) => {
      const asked = performance.now();
      const response = await ds.api(method, path, body);
      if (response.status !== 200) throw new Error(`${what}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
      const change = { what, asked, at: performance.now() };
      changes.push(change);
      onChange(change);
    };
    const drain = async (cluster: 'prod-a' | 'prod-b') => {
      await act(`drain ${cluster}`, 'POST', `/api/clusters/${cluster}/traffic`, { state: 'draining' });
      drainedAt[cluster] = performance.now();
      const waited = await ds.api<{ reason: string }>('GET', `/api/drain/${cluster}?wait=1&timeout=30s`);
      if (waited.body.reason !== 'idle')
        throw new Error(`${cluster} drained by ${waited.body.reason}, not because its sessions finished`);
    };
    const health = (cluster: string, want: string) =>
      waitFor(
        async () =>
          (await ds.api<StatusReport>('GET', '/api/status')).body.clusters
            .find((c) => c.name === cluster)!
            .members.every((m) => m.health === want),
        10_000,
        `${cluster} ${want}`,
      );

    await waitFor(() => load.samples.length > 200, 10_000, 'load to warm up');
    await drain('prod-a');
    await act('out prod-a', 'POST', '/api/clusters/prod-a/traffic', { state: 'out' });
    const ports = [this.members[0]!.port, this.members[1]!.port];
    await Promise.all([this.members[0]!.close(), this.members[1]!.close()]);
    await health('prod-a', 'down');
    this.members[0] = await appMember('a1', ports[0]);
    this.members[1] = await appMember('a2', ports[1]);
    await health('prod-a', 'up');
    await act('live prod-a', 'POST', '/api/clusters/prod-a/traffic', { state: 'live' });
    await waitFor(
      () => load.samples.some((s) => s.sentAt > changes.at(-1)!.at && clusterOf(s.member) === 'prod-a'),
      10_000,
      'prod-a to take traffic again',
    );
    await drain('prod-b');
    await act('out prod-b', 'POST', '/api/clusters/prod-b/traffic', { state: 'out' });
    await waitFor(
      () => load.samples.filter((s) => s.sentAt > changes.at(-1)!.at).length > 100,
      10_000,
      'more load after the swap',
    );
    await load.stop();

    // A request sent after "live" was asked for may rightly reach prod-a: count strays until then.
    const liveAgain = changes.find((c) => c.what === 'live prod-a')!.asked;
    const strays = load.samples.filter(
      (s) =>
        !s.bound &&
        ((clusterOf(s.member) === 'prod-a' && s.sentAt > drainedAt['prod-a']! && s.sentAt < liveAgain) ||
          (clusterOf(s.member) === 'prod-b' && s.sentAt > drainedAt['prod-b']!)),
    );
    const bySession = new Map<number, Set<string>>();
    for (const s of load.samples)
      if (s.session !== undefined)
        (bySession.get(s.session) ?? bySession.set(s.session, new Set()).get(s.session)!).add(s.member);
    return {
      samples: load.samples,
      failed: load.failures(),
      strays,
      movedSessions: [...bySession.values()].filter((served) => served.size > 1).length,
      sessions: bySession.size,
      changes,
      stalls: changes.map((c) => ({ what: c.what, ms: load.longestStall(c.at - 500, c.at + 500) })),
    };
  }
}
