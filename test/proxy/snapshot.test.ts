// The routing snapshot's pure parts, as tables: which site a Host header picks, which route a path picks
// and what the member sees of it, and what buildSnapshot makes of config and desired state (candidates
// for new sessions, standby, bound-session targets, weights, maintenance and pause).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DesiredState, SiteDesired } from '../../src/model.js';
import {
  hostName,
  inMaintenance,
  listHas,
  matchRoute,
  matchSite,
  memberPath,
  type SiteSnapshot,
} from '../../src/proxy/snapshot.js';
import { isPaused } from '../../src/proxy/pause.js';
import type { Candidate } from '../../src/balance/policy.js';
import { snapshotOf } from '../support/snapshot.js';

const url = (port: number) => ({ url: `http://127.0.0.1:${port}` });

/** Sites for the matching tables; every site has one route to its own cluster. */
function sites(withDefault: boolean) {
  const site = (hosts: string[]) => ({ hosts, routes: [{ path: '/', clusters: ['c'] }] });
  return snapshotOf({
    clusters: { c: { members: [url(9001)] } },
    sites: {
      public: site(['example.com', 'www.example.com']),
      wild: site(['*.apps.example.com']),
      shop: site(['shop.apps.example.com']),
      admin: site(['Admin.Example.COM']),
      ...(withDefault ? { other: site(['*']) } : {}),
    },
  });
}

describe('snapshot: Host header → host name', () => {
  const cases: { name: string; host: string | undefined; expected: string }[] = [
    { name: 'a plain name is kept', host: 'example.com', expected: 'example.com' },
    { name: 'the port is dropped', host: 'example.com:8080', expected: 'example.com' },
    { name: 'the name is lower-cased', host: 'WWW.Example.COM', expected: 'www.example.com' },
    { name: 'an IPv4 address loses its port', host: '127.0.0.1:80', expected: '127.0.0.1' },
    { name: 'an IPv6 literal keeps its brackets and loses its port', host: '[::1]:8443', expected: '[::1]' },
    { name: 'an IPv6 literal without a port is kept whole', host: '[::1]', expected: '[::1]' },
    { name: 'no Host header gives the empty name (answered 400)', host: undefined, expected: '' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(hostName(c.host), c.expected));
  }
});

describe('snapshot: site matching', () => {
  const withDefault = sites(true);
  const withoutDefault = sites(false);
  const cases: { name: string; host: string; default: boolean; site: string | undefined }[] = [
    { name: 'an exact host', host: 'example.com', default: true, site: 'public' },
    { name: 'a second host of the same site', host: 'www.example.com', default: true, site: 'public' },
    { name: 'a host with a port and capitals, as sent', host: 'WWW.Example.com:8080', default: true, site: 'public' },
    { name: 'a host named in capitals in the config', host: 'admin.example.com', default: true, site: 'admin' },
    { name: 'a wildcard matches one label', host: 'x.apps.example.com', default: true, site: 'wild' },
    { name: 'an exact host beats a wildcard', host: 'shop.apps.example.com', default: true, site: 'shop' },
    { name: 'a wildcard does not match two labels', host: 'a.b.apps.example.com', default: false, site: undefined },
    { name: 'a wildcard does not match its bare suffix', host: 'apps.example.com', default: false, site: undefined },
    { name: 'a sub-domain of an exact host is another host', host: 'api.example.com', default: false, site: undefined },
    { name: 'an unknown host goes to the default site', host: 'unknown.test', default: true, site: 'other' },
    {
      name: 'two labels below a wildcard go to the default site',
      host: 'a.b.apps.example.com',
      default: true,
      site: 'other',
    },
    {
      name: 'an unknown host without a default site matches nothing',
      host: 'unknown.test',
      default: false,
      site: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(matchSite(c.default ? withDefault : withoutDefault, hostName(c.host))?.name, c.site));
  }
});

describe('snapshot: route matching', () => {
  const snap = snapshotOf({
    clusters: { c: { members: [url(9001)] } },
    sites: {
      // Listed shortest first: the snapshot orders them, not the config.
      s: {
        hosts: ['example.com'],
        routes: ['/', '/api', '/api/v2', '/static/'].map((path) => ({ path, clusters: ['c'] })),
      },
      narrow: { hosts: ['narrow.example.com'], routes: [{ path: '/app', clusters: ['c'] }] },
    },
  });
  const site = (name: string) => [...snap.exact.values()].find((s) => s.name === name)!;
  const cases: { name: string; site?: string; path: string; route: string | undefined }[] = [
    { name: 'the root', path: '/', route: '/' },
    { name: 'a prefix itself', path: '/api', route: '/api' },
    { name: 'below a prefix', path: '/api/users', route: '/api' },
    { name: 'a prefix followed by a query', path: '/api?x=1', route: '/api' },
    { name: 'a prefix followed by a path parameter', path: '/api;jsessionid=A.a1', route: '/api' },
    { name: 'a prefix only on a segment boundary', path: '/apiary', route: '/' },
    { name: 'the longest prefix wins', path: '/api/v2/users', route: '/api/v2' },
    { name: 'the longest prefix only on a segment boundary', path: '/api/v20', route: '/api' },
    { name: 'a prefix ending in "/" matches below it', path: '/static/app.css', route: '/static/' },
    { name: 'a prefix ending in "/" needs that "/"', path: '/static', route: '/' },
    { name: 'paths are case-sensitive', path: '/API/users', route: '/' },
    { name: 'a site without "/" matches only its prefixes', site: 'narrow', path: '/app/x', route: '/app' },
    { name: 'a site without "/" matches nothing else', site: 'narrow', path: '/other', route: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(matchRoute(site(c.site ?? 's'), c.path)?.prefix, c.route));
  }
});

describe('snapshot: the path the member sees', () => {
  const snap = snapshotOf({
    clusters: { c: { members: [url(9001)] } },
    sites: {
      s: {
        hosts: ['example.com'],
        routes: [
          { path: '/', clusters: ['c'], strip_prefix: true },
          { path: '/app', clusters: ['c'], strip_prefix: true },
          { path: '/static/', clusters: ['c'], strip_prefix: true },
          { path: '/kept', clusters: ['c'] },
        ],
      },
    },
  });
  const route = (prefix: string) => snap.exact.get('example.com')!.routes.find((r) => r.prefix === prefix)!;
  const cases: { name: string; prefix: string; path: string; expected: string }[] = [
    { name: 'strip_prefix removes the prefix', prefix: '/app', path: '/app/users', expected: '/users' },
    { name: 'the prefix itself becomes "/"', prefix: '/app', path: '/app', expected: '/' },
    { name: 'a query after the prefix is kept, after "/"', prefix: '/app', path: '/app?q=1', expected: '/?q=1' },
    {
      name: 'a prefix ending in "/" keeps the member path absolute',
      prefix: '/static/',
      path: '/static/app.css',
      expected: '/app.css',
    },
    { name: 'stripping "/" changes nothing', prefix: '/', path: '/users', expected: '/users' },
    {
      name: 'without strip_prefix the path is unchanged',
      prefix: '/kept',
      path: '/kept/users',
      expected: '/kept/users',
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(memberPath(route(c.prefix), c.path), c.expected));
  }

  // The prefix put back into Location and Refresh headers: without its trailing "/", none for "/".
  const prefixes: { name: string; prefix: string; stripped: string }[] = [
    { name: 'the stripped prefix is put back as written', prefix: '/app', stripped: '/app' },
    { name: 'the stripped prefix is put back without its trailing "/"', prefix: '/static/', stripped: '/static' },
    { name: 'a stripped "/" puts nothing back', prefix: '/', stripped: '' },
    { name: 'nothing stripped, nothing put back', prefix: '/kept', stripped: '' },
  ];
  for (const c of prefixes) {
    it(c.name, () => assert.equal(route(c.prefix).stripped, c.stripped));
  }
});

describe('snapshot: client address lists (allow, deny, trusted proxies)', () => {
  const snap = snapshotOf({
    clusters: { c: { members: [url(9001)] } },
    sites: {
      s: {
        hosts: ['example.com'],
        allow: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'],
        routes: [{ path: '/', clusters: ['c'] }],
      },
    },
  });
  const allow = snap.exact.get('example.com')!.allow!;
  const cases: { name: string; address: string; listed: boolean }[] = [
    { name: 'an address in a subnet', address: '10.1.2.3', listed: true },
    { name: 'an address beside the subnet', address: '11.0.0.1', listed: false },
    { name: 'a single address', address: '192.0.2.7', listed: true },
    { name: 'the next address to a single one', address: '192.0.2.8', listed: false },
    { name: 'an IPv6 address in an IPv6 subnet', address: 'fd12::1', listed: true },
    { name: 'an IPv6 address outside it', address: '2001:db8::1', listed: false },
    { name: 'an IPv4-mapped IPv6 address counts as IPv4', address: '::ffff:10.1.2.3', listed: true },
    { name: 'an IPv4-mapped address outside counts as IPv4 too', address: '::ffff:11.0.0.1', listed: false },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(listHas(allow, c.address), c.listed));
  }

  it('no list when none is configured', () => {
    assert.equal(snap.exact.get('example.com')!.deny, undefined);
    assert.equal(snap.trusted, undefined);
  });
});

/** Member ids of a candidate list, with their weights: "a1:1". */
const ids = (candidates: readonly Candidate[]) => candidates.map((c) => `${c.member.id}:${c.weight}`);

describe('snapshot: new sessions by route traffic and cluster state', () => {
  const config = (traffic: 'shared' | 'pinned' | undefined, clusters: string[]) => ({
    clusters: {
      a: {
        members: [
          { ...url(9001), route: 'a1' },
          { ...url(9002), route: 'a2' },
        ],
      },
      b: { members: [{ ...url(9003), route: 'b1' }] },
    },
    sites: {
      s: {
        hosts: ['example.com'],
        routes: [{ path: '/', clusters, ...(traffic ? { traffic } : {}), sticky: { mode: 'route' } }],
      },
    },
  });
  const cases: {
    name: string;
    traffic: 'shared' | 'pinned' | undefined;
    clusters: string[];
    a: 'live' | 'draining' | 'out';
    fresh: string[];
  }[] = [
    {
      name: 'shared: live clusters take new sessions',
      traffic: 'shared',
      clusters: ['a', 'b'],
      a: 'live',
      fresh: ['a1', 'a2', 'b1'],
    },
    {
      name: 'shared: a draining cluster takes none',
      traffic: 'shared',
      clusters: ['a', 'b'],
      a: 'draining',
      fresh: ['b1'],
    },
    { name: 'shared: an out cluster takes none', traffic: 'shared', clusters: ['a', 'b'], a: 'out', fresh: ['b1'] },
    {
      name: 'pinned: a draining cluster still takes new sessions',
      traffic: 'pinned',
      clusters: ['a', 'b'],
      a: 'draining',
      fresh: ['a1', 'a2', 'b1'],
    },
    {
      name: 'pinned: an out cluster still takes new sessions',
      traffic: 'pinned',
      clusters: ['a', 'b'],
      a: 'out',
      fresh: ['a1', 'a2', 'b1'],
    },
    {
      name: 'several clusters are shared by default',
      traffic: undefined,
      clusters: ['a', 'b'],
      a: 'out',
      fresh: ['b1'],
    },
    { name: 'one cluster is pinned by default', traffic: undefined, clusters: ['a'], a: 'out', fresh: ['a1', 'a2'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const snap = snapshotOf(config(c.traffic, c.clusters), (state) => (state.clusters.a!.traffic = c.a));
      const route = snap.exact.get('example.com')!.routes[0]!;
      assert.deepEqual(
        route.fresh.map((f) => f.member.id),
        c.fresh,
      );
      // Whatever its state, sessions bound to a member of cluster a still find it, with the cluster's state.
      assert.equal(route.byTarget.get('a1')?.group.traffic, c.a);
      assert.equal(
        route.byTarget.get('a1')?.group.shared,
        (c.traffic ?? (c.clusters.length > 1 ? 'shared' : 'pinned')) === 'shared',
      );
    });
  }
});

describe('snapshot: member admin states', () => {
  type Admin = 'ready' | 'draining' | 'disabled' | 'standby';
  const cases: {
    name: string;
    config: Admin;
    desired?: Admin;
    cluster?: 'draining';
    fresh: boolean;
    standby: boolean;
    failover: boolean;
  }[] = [
    { name: 'ready: new sessions and failover', config: 'ready', fresh: true, standby: false, failover: true },
    {
      name: 'draining: no new sessions, its bound ones stay',
      config: 'ready',
      desired: 'draining',
      fresh: false,
      standby: false,
      failover: false,
    },
    {
      name: 'disabled: no new sessions, bound ones see it disabled',
      config: 'ready',
      desired: 'disabled',
      fresh: false,
      standby: false,
      failover: false,
    },
    {
      name: 'standby: only when no ready member can serve',
      config: 'standby',
      fresh: false,
      standby: true,
      failover: false,
    },
    {
      name: 'the desired state wins over the config',
      config: 'standby',
      desired: 'ready',
      fresh: true,
      standby: false,
      failover: true,
    },
    {
      name: 'standby in a draining cluster on a shared route: not even standby',
      config: 'standby',
      cluster: 'draining',
      fresh: false,
      standby: false,
      failover: false,
    },
    {
      name: 'ready in a draining cluster on a shared route: failover for its bound sessions only',
      config: 'ready',
      cluster: 'draining',
      fresh: false,
      standby: false,
      failover: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const snap = snapshotOf(
        {
          clusters: {
            a: { members: [{ ...url(9001), route: 'a1', state: c.config }] },
            b: { members: [{ ...url(9002), route: 'b1' }] },
          },
          sites: {
            s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['a', 'b'], sticky: { mode: 'route' } }] },
          },
        },
        (state) => {
          if (c.desired) state.members['a/a1']!.admin = c.desired;
          if (c.cluster) state.clusters.a!.traffic = c.cluster;
        },
      );
      const route = snap.exact.get('example.com')!.routes[0]!;
      const has = (list: readonly Candidate[]) => list.some((x) => x.member.id === 'a1');
      assert.deepEqual(
        {
          fresh: has(route.fresh),
          standby: has(route.standby),
          failover: has(route.clusters.get('a')!.ready),
          bound: route.byTarget.get('a1')?.admin,
        },
        { fresh: c.fresh, standby: c.standby, failover: c.failover, bound: c.desired ?? c.config },
      );
    });
  }
});

describe('snapshot: weights', () => {
  type Member = { route: string; weight?: number; state?: string };
  const cases: {
    name: string;
    traffic: 'shared' | 'pinned';
    a: Member[];
    state?: (s: DesiredState) => void;
    fresh: string[];
    standby?: string[];
  }[] = [
    {
      name: 'pinned: each member its own weight',
      traffic: 'pinned',
      a: [
        { route: 'a1', weight: 1 },
        { route: 'a2', weight: 3 },
      ],
      fresh: ['a1:1', 'a2:3', 'b1:1'],
    },
    {
      name: 'pinned: a weight set at run time wins',
      traffic: 'pinned',
      a: [{ route: 'a1' }, { route: 'a2' }],
      state: (s) => (s.members['a/a2']!.weight = 5),
      fresh: ['a1:1', 'a2:5', 'b1:1'],
    },
    {
      name: 'shared: a cluster weight is split among its members by their weights',
      traffic: 'shared',
      a: [
        { route: 'a1', weight: 1 },
        { route: 'a2', weight: 3 },
      ],
      state: (s) => (s.clusters.a!.weight = 8),
      fresh: ['a1:2', 'a2:6', 'b1:1'],
    },
    {
      name: 'shared: members not ready take no share',
      traffic: 'shared',
      a: [{ route: 'a1' }, { route: 'a2', state: 'draining' }],
      state: (s) => (s.clusters.a!.weight = 4),
      fresh: ['a1:4', 'b1:1'],
    },
    {
      name: 'shared: a cluster with no ready weight gives its members none',
      traffic: 'shared',
      a: [{ route: 'a1', weight: 0 }],
      fresh: ['a1:0', 'b1:1'],
    },
    {
      name: 'a zero weight stays zero (never picked)',
      traffic: 'pinned',
      a: [{ route: 'a1', weight: 0 }, { route: 'a2' }],
      fresh: ['a1:0', 'a2:1', 'b1:1'],
    },
    {
      name: 'standby keeps its own weight, at least 1',
      traffic: 'shared',
      a: [
        { route: 'a1', state: 'standby', weight: 0 },
        { route: 'a2', state: 'standby', weight: 2 },
      ],
      fresh: ['b1:1'],
      standby: ['a1:1', 'a2:2'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const members = (list: Member[], port: number) => list.map((m, i) => ({ ...url(port + i), ...m }));
      const snap = snapshotOf(
        {
          clusters: { a: { members: members(c.a, 9001) }, b: { members: members([{ route: 'b1' }], 9101) } },
          sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['a', 'b'], traffic: c.traffic }] } },
        },
        c.state,
      );
      const route = snap.exact.get('example.com')!.routes[0]!;
      assert.deepEqual(ids(route.fresh), c.fresh);
      assert.deepEqual(ids(route.standby), c.standby ?? []);
    });
  }
});

describe('snapshot: bound-session targets', () => {
  const cases: { name: string; sticky: Record<string, unknown>; targets: string[] }[] = [
    { name: 'route mode: by the member route', sticky: { mode: 'route' }, targets: ['a1'] },
    { name: 'cookie mode: by member key, routes or not', sticky: { mode: 'cookie' }, targets: ['a/a1', 'a/2'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const snap = snapshotOf({
        clusters: { a: { members: [{ ...url(9001), route: 'a1' }, url(9002)] } },
        sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['a'], sticky: c.sticky }] } },
      });
      assert.deepEqual([...snap.exact.get('example.com')!.routes[0]!.byTarget.keys()], c.targets);
    });
  }
});

describe('snapshot: drain deadline for the notice', () => {
  const since = '2026-01-01T10:00:00.000Z';
  const cases: { name: string; desired: Partial<DesiredState['clusters'][string]>; deadline: string | undefined }[] = [
    { name: 'live: none', desired: {}, deadline: undefined },
    {
      name: 'draining: its drain deadline',
      desired: {
        traffic: 'draining',
        drainingSince: since,
        drainDeadline: { at: '2026-01-01T10:05:00.000Z', who: 'op', from: 'cli' },
      },
      deadline: '2026-01-01T10:05:00.000Z',
    },
    {
      name: 'draining without one (an older state): drain.deadline from the start',
      desired: { traffic: 'draining', drainingSince: since },
      deadline: '2026-01-01T10:30:00.000Z',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const snap = snapshotOf(
        {
          drain: { deadline: '30m' },
          clusters: { a: { members: [url(9001)] } },
          sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['a'] }] } },
        },
        (state) => Object.assign(state.clusters.a!, c.desired),
      );
      const at = snap.exact.get('example.com')!.routes[0]!.clusters.get('a')!.drainDeadline;
      assert.equal(at === undefined ? undefined : new Date(at).toISOString(), c.deadline);
    });
  }
});

describe('snapshot: maintenance and pause', () => {
  const now = Date.parse('2026-01-01T12:00:00.000Z');
  const later = '2026-01-01T12:10:00.000Z';
  const earlier = '2026-01-01T11:50:00.000Z';
  const cases: { name: string; desired: SiteDesired | undefined; maintenance: boolean; paused: boolean }[] = [
    { name: 'no desired state: serving', desired: undefined, maintenance: false, paused: false },
    {
      name: 'maintenance without an end',
      desired: { maintenance: { message: 'back soon' } },
      maintenance: true,
      paused: false,
    },
    {
      name: 'maintenance until later',
      desired: { maintenance: { message: 'back soon', until: later } },
      maintenance: true,
      paused: false,
    },
    {
      name: 'maintenance that has ended by itself',
      desired: { maintenance: { message: 'back soon', until: earlier } },
      maintenance: false,
      paused: false,
    },
    {
      name: 'a pause until later holds requests',
      desired: { pause: { until: later, then: 'serve' } },
      maintenance: false,
      paused: true,
    },
    {
      name: 'a pause that has run out holds nothing',
      desired: { pause: { until: earlier, then: 'reject' } },
      maintenance: false,
      paused: false,
    },
    {
      name: 'both at once',
      desired: { maintenance: { message: 'm' }, pause: { until: later, then: 'serve' } },
      maintenance: true,
      paused: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const snap = snapshotOf(
        {
          clusters: { a: { members: [url(9001)] } },
          sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['a'] }] } },
        },
        (state) => {
          if (c.desired) state.sites.s = c.desired;
        },
      );
      const site: SiteSnapshot = snap.exact.get('example.com')!;
      assert.deepEqual(
        { maintenance: inMaintenance(site, now), paused: isPaused(site, now) },
        { maintenance: c.maintenance, paused: c.paused },
      );
      if (c.desired?.maintenance) assert.equal(site.maintenance?.message, c.desired.maintenance.message);
      if (c.desired?.pause) assert.equal(site.pause?.then, c.desired.pause.then);
    });
  }
});
