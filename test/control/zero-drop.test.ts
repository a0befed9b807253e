// The control plane's proof (issue 3 §6): the origin document's procedure under sustained load, with
// sticky users mid-session and plain users, loses nothing and sends no new user to a drained cluster.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { Load } from '../support/load.js';
import { startMember, type TestMember } from '../support/members.js';
import { waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import type { StatusReport } from '../../src/control/status.js';

function appMember(route: string, port = 0): Promise<TestMember> {
  let next = 0;
  return startMember(route, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/health') return res.end('ok');
      const fresh = !/JSESSIONID=/.test(req.headers.cookie ?? '');
      res.writeHead(200, { 'content-type': 'text/plain', ...(fresh ? { 'set-cookie': `JSESSIONID=S${next++}.${route}; Path=/` } : {}) });
      res.end(`${route} ok`);
    });
  }, port);
}

let members: TestMember[] = [];
let ds: TestDayshift;

before(async () => {
  members = await Promise.all(['a1', 'a2', 'b1', 'b2'].map((r) => appMember(r)));
  ds = await startTestDayshift({
    clusters: {
      'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }, { url: members[1]!.url, route: 'a2' }] },
      'prod-b': { members: [{ url: members[2]!.url, route: 'b1' }, { url: members[3]!.url, route: 'b2' }] },
    },
    health: { path: '/health', interval: '200ms', timeout: '500ms', rise: 1, fall: 1 },
    drain: { session_idle: '500ms', deadline: '30s' },
    sites: {
      public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], balance: 'least-busy', sticky: { mode: 'route', cookie: 'JSESSIONID', path_param: 'jsessionid' } }] },
    },
  });
});
after(async () => {
  await ds?.stop();
  await Promise.all(members.map((m) => m.close()));
});

test('drain, out, restart and swap both clusters under load: 0 failed, 0 new users to a drained cluster, sessions stay home', async () => {
  const load = new Load({ port: ds.port, plainClients: 4, stickyClients: 8, stepsPerSession: 6, thinkMs: 20, maxMs: 60_000 });
  const clusterOf = (member: string) => (member.startsWith('a') ? 'prod-a' : member.startsWith('b') ? 'prod-b' : '?');
  const drainedAt: Record<string, number> = {};
  /** Each change with when it was asked for and when the API confirmed it. */
  const changes: { what: string; asked: number; at: number }[] = [];
  const act = async (what: string, method: string, path: string, body?: unknown) => {
    const asked = performance.now();
    const response = await ds.api(method, path, body);
    assert.equal(response.status, 200, `${what}: ${JSON.stringify(response.body)}`);
    changes.push({ what, asked, at: performance.now() });
  };
  const drain = async (cluster: 'prod-a' | 'prod-b') => {
    await act(`drain ${cluster}`, 'POST', `/api/clusters/${cluster}/traffic`, { state: 'draining' });
    drainedAt[cluster] = performance.now();
    const waited = await ds.api<{ drained: boolean; reason: string }>('GET', `/api/drain/${cluster}?wait=1&timeout=30s`);
    assert.equal(waited.body.reason, 'idle', `${cluster} drained because its sessions finished, not at the deadline`);
  };
  const health = async (cluster: string, want: string) =>
    waitFor(async () => (await ds.api<StatusReport>('GET', '/api/status')).body.clusters.find((c) => c.name === cluster)!.members.every((m) => m.health === want), 10_000, `${cluster} ${want}`);

  await waitFor(() => load.samples.length > 200, 10_000, 'load to warm up');
  await drain('prod-a');
  await act('out prod-a', 'POST', '/api/clusters/prod-a/traffic', { state: 'out' });
  // Release prod-a: stop its members, start them again on the same ports.
  const ports = [members[0]!.port, members[1]!.port];
  await Promise.all([members[0]!.close(), members[1]!.close()]);
  await health('prod-a', 'down');
  members[0] = await appMember('a1', ports[0]);
  members[1] = await appMember('a2', ports[1]);
  await health('prod-a', 'up');
  await act('live prod-a', 'POST', '/api/clusters/prod-a/traffic', { state: 'live' });
  await waitFor(() => load.samples.some((s) => s.sentAt > changes.at(-1)!.at && clusterOf(s.member) === 'prod-a'), 10_000, 'prod-a to take traffic again');
  await drain('prod-b');
  await act('out prod-b', 'POST', '/api/clusters/prod-b/traffic', { state: 'out' });
  await waitFor(() => load.samples.filter((s) => s.sentAt > changes.at(-1)!.at).length > 100, 10_000, 'more load after the swap');
  await load.stop();

  const failed = load.failures();
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);

  // No new (unbound) request reached a cluster after its drain call returned, until it was live again.
  const liveAgain = changes.find((c) => c.what === 'live prod-a')!.asked;
  const strays = load.samples.filter((s) => !s.bound && ((clusterOf(s.member) === 'prod-a' && s.sentAt > drainedAt['prod-a']! && s.sentAt < liveAgain) || (clusterOf(s.member) === 'prod-b' && s.sentAt > drainedAt['prod-b']!)));
  assert.equal(strays.length, 0, `new requests sent to a draining cluster: ${JSON.stringify(strays.map((s) => ({ ...s, afterDrainMs: s.sentAt - drainedAt[clusterOf(s.member)]! })))}`);

  // Every sticky session was served by one member from its first request to its last.
  const bySession = new Map<number, Set<string>>();
  for (const s of load.samples) if (s.session !== undefined) (bySession.get(s.session) ?? bySession.set(s.session, new Set()).get(s.session)!).add(s.member);
  const moved = [...bySession.entries()].filter(([, served]) => served.size > 1);
  assert.equal(moved.length, 0, `sessions served by more than one member: ${JSON.stringify(moved.slice(0, 3).map(([id, m]) => [id, [...m]]))}`);

  const stalls = changes.map((c) => `${c.what}: ${load.longestStall(c.at - 500, c.at + 500).toFixed(1)} ms`);
  console.log(`# zero-drop: ${load.samples.length} requests, ${bySession.size} sticky sessions, 0 failed; longest stall around each change: ${stalls.join(', ')}`);
});
