// Choosing the member for one request, as a table: the bound member while it can serve, failover within
// its cluster, 503 with nofailover, else a new member from the live clusters, else standby. Route tables
// come from real config through buildSnapshot.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DesiredState } from '../../src/model.js';
import { select, type SelectFailure } from '../../src/balance/select.js';
import { StickySigner } from '../../src/balance/sticky.js';
import { snapshotOf } from '../support/snapshot.js';

const signer = new StickySigner('a-test-secret-of-16+');
const now = Date.now();

interface Case {
  name: string;
  sticky?: Record<string, unknown> | false;
  traffic?: 'pinned';
  state?: (s: DesiredState) => void;
  standby?: boolean;
  down?: string[];
  ejected?: string[];
  /** Tried already by this request (a retry). */
  exclude?: string[];
  cookie?: string;
  path?: string;
  /** A preview pins the request to this cluster of the route. */
  preview?: string;
  /** The member picked (one of several for a new session), or the failure. */
  member: string | string[] | SelectFailure;
  session?: string;
  newBinding?: boolean;
}

/** Cluster a (a1, a2) and b (b1, standby when asked) on one shared route, route-sticky by default. */
function run(c: Case) {
  const snap = snapshotOf(
    {
      clusters: {
        a: {
          members: [
            { url: 'http://127.0.0.1:9001', route: 'a1' },
            { url: 'http://127.0.0.1:9002', route: 'a2' },
          ],
        },
        b: { members: [{ url: 'http://127.0.0.1:9003', route: 'b1', ...(c.standby ? { state: 'standby' } : {}) }] },
      },
      sites: {
        s: {
          hosts: ['example.com'],
          routes: [
            {
              path: '/',
              clusters: ['a', 'b'],
              ...(c.traffic ? { traffic: c.traffic } : {}),
              ...(c.sticky === false ? {} : { sticky: c.sticky ?? { mode: 'route' } }),
            },
          ],
        },
      },
    },
    c.state,
  );
  const runtime = (id: string) => [...snap.memberOfCluster.values()].flat().find((m) => m.id === id)!;
  for (const id of c.down ?? []) runtime(id).health = 'down';
  for (const id of c.ejected ?? []) runtime(id).ejectedUntil = now + 60_000;
  const route = snap.exact.get('example.com')!.routes[0]!;
  return select(
    route,
    c.cookie,
    c.path ?? '/',
    signer,
    now,
    c.exclude?.map(runtime),
    c.preview === undefined ? undefined : route.clusters.get(c.preview),
  );
}

const drained = (cluster: string, traffic: 'draining' | 'out') => (s: DesiredState) =>
  (s.clusters[cluster]!.traffic = traffic);
const admin = (key: `${string}/${string}`, state: 'draining' | 'disabled') => (s: DesiredState) =>
  (s.members[key]!.admin = state);

describe('select: route-sticky sessions', () => {
  const cases: Case[] = [
    {
      name: 'a session goes to its member',
      cookie: 'JSESSIONID=S.a1',
      member: 'a1',
      session: 'S.a1',
      newBinding: false,
    },
    {
      name: 'a session in the path goes to its member',
      path: '/cart;jsessionid=S.a1',
      member: 'a1',
      session: 'S.a1',
      newBinding: false,
    },
    {
      name: 'a draining cluster keeps its sessions',
      cookie: 'JSESSIONID=S.a1',
      state: drained('a', 'draining'),
      member: 'a1',
      newBinding: false,
    },
    {
      name: 'a draining member keeps its sessions',
      cookie: 'JSESSIONID=S.a1',
      state: admin('a/a1', 'draining'),
      member: 'a1',
      newBinding: false,
    },
    {
      name: 'a disabled member: failover within its cluster, session kept',
      cookie: 'JSESSIONID=S.a1',
      state: admin('a/a1', 'disabled'),
      member: 'a2',
      session: 'S.a1',
      newBinding: true,
    },
    {
      name: 'a member down: failover within its cluster',
      cookie: 'JSESSIONID=S.a1',
      down: ['a1'],
      member: 'a2',
      newBinding: true,
    },
    {
      name: 'an ejected member: failover within its cluster',
      cookie: 'JSESSIONID=S.a1',
      ejected: ['a1'],
      member: 'a2',
      newBinding: true,
    },
    {
      name: 'a retry does not go back to the member tried',
      cookie: 'JSESSIONID=S.a1',
      exclude: ['a1'],
      member: 'a2',
      newBinding: true,
    },
    {
      name: 'a draining cluster fails over within itself too',
      cookie: 'JSESSIONID=S.a1',
      state: drained('a', 'draining'),
      down: ['a1'],
      member: 'a2',
      newBinding: true,
    },
    {
      name: 'no failover target in the cluster: a new member',
      cookie: 'JSESSIONID=S.a1',
      down: ['a1', 'a2'],
      member: 'b1',
      newBinding: true,
    },
    {
      name: 'nofailover: 503 rather than another member',
      sticky: { mode: 'route', nofailover: true },
      cookie: 'JSESSIONID=S.a1',
      down: ['a1'],
      member: 'bound-unavailable',
    },
    {
      name: 'nofailover: its member still serves',
      sticky: { mode: 'route', nofailover: true },
      cookie: 'JSESSIONID=S.a1',
      member: 'a1',
      newBinding: false,
    },
    {
      name: 'a cluster taken out on a shared route loses its sessions to a live one',
      cookie: 'JSESSIONID=S.a1',
      state: drained('a', 'out'),
      member: 'b1',
      session: undefined,
      newBinding: true,
    },
    {
      name: 'a cluster taken out on a pinned route keeps its sessions',
      traffic: 'pinned',
      cookie: 'JSESSIONID=S.a1',
      state: drained('a', 'out'),
      member: 'a1',
      newBinding: false,
    },
    {
      name: 'a route no member has: a new member',
      cookie: 'JSESSIONID=S.zz',
      member: ['a1', 'a2', 'b1'],
      session: undefined,
      newBinding: true,
    },
  ];
  for (const c of cases) it(c.name, () => check(c));
});

describe('select: new sessions', () => {
  const cases: Case[] = [
    { name: 'from the live clusters, to be bound', member: ['a1', 'a2', 'b1'], session: undefined, newBinding: true },
    {
      name: 'without stickiness nothing is bound',
      sticky: false,
      cookie: 'JSESSIONID=S.a1',
      member: ['a1', 'a2', 'b1'],
      newBinding: false,
    },
    { name: 'not from a draining cluster', state: drained('a', 'draining'), member: 'b1' },
    { name: 'not from a member down', down: ['a1', 'b1'], member: 'a2' },
    { name: 'standby only when no ready member can serve', standby: true, down: ['a1', 'a2'], member: 'b1' },
    { name: 'standby is not used while a ready member can', standby: true, member: ['a1', 'a2'] },
    { name: 'nothing usable: none available', down: ['a1', 'a2', 'b1'], member: 'none-available' },
    {
      name: 'every live cluster out: none available',
      state: (s) => {
        s.clusters.a!.traffic = 'out';
        s.clusters.b!.traffic = 'out';
      },
      member: 'none-available',
    },
  ];
  for (const c of cases) it(c.name, () => check(c));
});

describe('select: cookie-sticky sessions', () => {
  const cookie = (value: string) => `DAYSHIFT_STICKY=${value}`;
  const cases: Case[] = [
    {
      name: 'a signed cookie goes to its member',
      cookie: cookie(signer.issue('a/a1', 'S1')),
      member: 'a1',
      session: 'S1',
      newBinding: false,
    },
    {
      name: 'a forged cookie counts as none',
      cookie: cookie(new StickySigner('another-secret-16+').issue('a/a1', 'S1')),
      member: ['a1', 'a2', 'b1'],
      session: undefined,
      newBinding: true,
    },
    {
      name: 'failover drops the session id (a new cookie is set)',
      cookie: cookie(signer.issue('a/a1', 'S1')),
      down: ['a1'],
      member: 'a2',
      session: undefined,
      newBinding: true,
    },
  ];
  for (const c of cases) it(c.name, () => check({ sticky: { mode: 'cookie' }, ...c }));
});

describe('select: a preview pins the request to its cluster', () => {
  const out = drained('a', 'out');
  const cases: Case[] = [
    {
      name: 'a new session goes to the previewed cluster although it is out',
      state: out,
      preview: 'a',
      member: ['a1', 'a2'],
      session: undefined,
      newBinding: true,
    },
    {
      name: 'a session bound to the previewed cluster stays with its member while it is out',
      state: out,
      preview: 'a',
      cookie: 'JSESSIONID=S.a2',
      member: 'a2',
      session: 'S.a2',
      newBinding: false,
    },
    {
      name: 'a session bound to another cluster does not take the request away from the preview',
      preview: 'a',
      cookie: 'JSESSIONID=S.b1',
      member: ['a1', 'a2'],
      newBinding: true,
    },
    {
      name: 'a previewed member down: another member of the cluster',
      state: out,
      preview: 'a',
      cookie: 'JSESSIONID=S.a1',
      down: ['a1'],
      member: 'a2',
      newBinding: true,
    },
    {
      name: 'no previewed member can serve: none available, never another cluster',
      state: out,
      preview: 'a',
      down: ['a1', 'a2'],
      member: 'none-available',
    },
    { name: 'a retry stays within the previewed cluster', state: out, preview: 'a', exclude: ['a1'], member: 'a2' },
    {
      name: 'a draining previewed cluster takes new sessions for the preview',
      state: drained('a', 'draining'),
      preview: 'a',
      member: ['a1', 'a2'],
    },
  ];
  for (const c of cases) it(c.name, () => check(c));
});

function check(c: Case): void {
  const result = run(c);
  if (typeof result === 'string') {
    assert.equal(result, c.member);
    return;
  }
  const expected = typeof c.member === 'string' ? [c.member] : c.member;
  assert.ok(expected.includes(result.member.id), `picked ${result.member.id}, expected ${expected.join(' or ')}`);
  if ('session' in c) assert.equal(result.session, c.session);
  if (c.newBinding !== undefined) assert.equal(result.newBinding, c.newBinding);
}
