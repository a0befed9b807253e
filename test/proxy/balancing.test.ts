import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SessionTracker } from '../../src/control/session-tracker.js';
import { initialState } from '../../src/control/desired-state.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, startTestProxy, type TestProxy } from '../support/proxy.js';

async function tally(
  port: number,
  n: number,
  options: Parameters<typeof request>[1] = {},
): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = (await request(port, options)).body.split(' ')[0]!;
    result[name] = (result[name] ?? 0) + 1;
  }
  return result;
}

describe('balancing, traffic states and stickiness', () => {
  const members: Record<string, TestMember> = {};
  let proxy: TestProxy;
  const sessions = new SessionTracker(1000);

  before(async () => {
    for (const name of ['a1', 'a2', 'b1', 'b2', 's1']) members[name] = await startMember(name);
    const m = (name: string, extra: Record<string, unknown> = {}) => ({
      url: members[name]!.url,
      route: name,
      ...extra,
    });
    proxy = await startTestProxy(
      {
        clusters: {
          a: { members: [m('a1'), m('a2'), m('s1', { state: 'standby' })] },
          b: { members: [m('b1'), m('b2', { weight: 3 })] },
        },
        health: { enabled: false },
        cookie_secret: 'x'.repeat(32),
        sites: {
          rr: { hosts: ['rr.test'], routes: [{ path: '/', clusters: ['a', 'b'] }] },
          route: {
            hosts: ['route.test'],
            routes: [
              {
                path: '/',
                clusters: ['a', 'b'],
                sticky: { mode: 'route', cookie: 'JSESSIONID', path_param: 'jsessionid' },
              },
            ],
          },
          strict: {
            hosts: ['strict.test'],
            routes: [{ path: '/', clusters: ['a', 'b'], sticky: { mode: 'route', nofailover: true } }],
          },
          cookie: {
            hosts: ['cookie.test'],
            routes: [
              {
                path: '/',
                clusters: ['a', 'b'],
                sticky: { mode: 'cookie', secure: true, same_site: 'Strict', max_age: '1h' },
              },
            ],
          },
          qa: { hosts: ['qa.test'], routes: [{ path: '/', clusters: ['b'] }] },
        },
      },
      { sessions },
    );
  });
  beforeEach(() => proxy.reapply(proxy.raw, initialState(proxy.loaded.config)));
  after(async () => {
    await proxy?.handle.close(1000);
    for (const m of Object.values(members)) await m.close();
  });

  it('splits new requests by cluster weight, then member weight within the cluster', async () => {
    // Clusters share equally; within b, b2 has 3 of 4 parts: a1 25%, a2 25%, b1 12.5%, b2 37.5%.
    assert.deepEqual(await tally(proxy.port, 40, { host: 'rr.test' }), { a1: 10, a2: 10, b1: 5, b2: 15 });
  });

  it('follows a cluster weight change from apply()', async () => {
    const state = initialState(proxy.loaded.config);
    state.clusters.a!.weight = 3;
    proxy.reapply(proxy.raw, state);
    const counts = await tally(proxy.port, 32, { host: 'rr.test' });
    assert.equal((counts.a1 ?? 0) + (counts.a2 ?? 0), 24);
  });

  it('sends no new requests to a draining or out cluster, and ignores traffic on pinned sites', async () => {
    const state = initialState(proxy.loaded.config);
    state.clusters.b!.traffic = 'draining';
    proxy.reapply(proxy.raw, state);
    assert.deepEqual(await tally(proxy.port, 8, { host: 'rr.test' }), { a1: 4, a2: 4 });
    state.clusters.b!.traffic = 'out';
    proxy.reapply(proxy.raw, state);
    assert.deepEqual(await tally(proxy.port, 4, { host: 'rr.test' }), { a1: 2, a2: 2 });
    assert.deepEqual(await tally(proxy.port, 4, { host: 'qa.test' }), { b1: 1, b2: 3 });
  });

  it('route mode: the JSESSIONID suffix or ;jsessionid path parameter picks the member', async () => {
    assert.deepEqual(
      await tally(proxy.port, 5, { host: 'route.test', headers: { cookie: 'x=1; JSESSIONID=ABC.b1' } }),
      { b1: 5 },
    );
    assert.deepEqual(await tally(proxy.port, 5, { host: 'route.test', path: '/cart;jsessionid=XYZ.a2?x=1' }), {
      a2: 5,
    });
    // These members issued no session: ids the client made up route, but hold no drain (drain.test.ts).
    const bound = sessions.byMember(Date.now(), 60_000);
    assert.equal(bound.get('b/b1'), undefined);
    assert.equal(bound.get('a/a2'), undefined);
  });

  it('route mode: a draining cluster keeps its sessions and gets no new ones', async () => {
    const state = initialState(proxy.loaded.config);
    state.clusters.b!.traffic = 'draining';
    state.members['a/a1']!.admin = 'draining';
    proxy.reapply(proxy.raw, state);
    assert.deepEqual(await tally(proxy.port, 3, { host: 'route.test', headers: { cookie: 'JSESSIONID=S.b2' } }), {
      b2: 3,
    });
    assert.deepEqual(await tally(proxy.port, 3, { host: 'route.test', headers: { cookie: 'JSESSIONID=S.a1' } }), {
      a1: 3,
    });
    assert.deepEqual(await tally(proxy.port, 4, { host: 'route.test' }), { a2: 4 });
  });

  it('route mode: fails over within the cluster when the bound member is disabled, or 503 with nofailover', async () => {
    const state = initialState(proxy.loaded.config);
    state.members['b/b1']!.admin = 'disabled';
    proxy.reapply(proxy.raw, state);
    assert.deepEqual(await tally(proxy.port, 3, { host: 'route.test', headers: { cookie: 'JSESSIONID=S.b1' } }), {
      b2: 3,
    });
    const strict = await request(proxy.port, { host: 'strict.test', headers: { cookie: 'JSESSIONID=S.b1' } });
    assert.equal(strict.status, 503);
    assert.ok(strict.headers['retry-after']);
  });

  it('cookie mode: sets a signed cookie with the configured attributes and keeps the client on its member', async () => {
    const first = await request(proxy.port, { host: 'cookie.test' });
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    assert.match(setCookie, /^DAYSHIFT_STICKY=[^;]+; Path=\/; Max-Age=3600; Secure; HttpOnly; SameSite=Strict$/);
    const cookie = setCookie.split(';')[0]!;
    const member = first.body.split(' ')[0]!;
    const again = await tally(proxy.port, 6, { host: 'cookie.test', headers: { cookie } });
    assert.deepEqual(again, { [member]: 6 });
    const repeat = await request(proxy.port, { host: 'cookie.test', headers: { cookie } });
    assert.equal(repeat.headers['set-cookie'], undefined, 'a valid binding is not re-issued');
    const key = `${member[0]}/${member}` as const;
    assert.ok((sessions.byMember(Date.now(), 60_000).get(key)?.active ?? 0) >= 1, 'the bound session was reported');
  });

  it('cookie mode: a forged or tampered cookie is ignored', async () => {
    const first = await request(proxy.port, { host: 'cookie.test' });
    const value = first.headers['set-cookie']![0]!.split(';')[0]!.split('=')[1]!;
    const [, session, mac] = value.split('.');
    const forged = `${Buffer.from('b/b1').toString('base64url')}.${session}.${mac}`;
    const reply = await request(proxy.port, { host: 'cookie.test', headers: { cookie: `DAYSHIFT_STICKY=${forged}` } });
    assert.ok(reply.headers['set-cookie'], 'a forged cookie gets a fresh binding');
    const counts = await tally(proxy.port, 12, {
      host: 'cookie.test',
      headers: { cookie: `DAYSHIFT_STICKY=${forged}` },
    });
    assert.ok(Object.keys(counts).length > 1, `forged cookie pinned requests to ${JSON.stringify(counts)}`);
  });

  it('serves standby members only when no ready member can', async () => {
    const state = initialState(proxy.loaded.config);
    state.clusters.b!.traffic = 'out';
    proxy.reapply(proxy.raw, state);
    assert.deepEqual(await tally(proxy.port, 4, { host: 'rr.test' }), { a1: 2, a2: 2 });
    state.members['a/a1']!.admin = 'disabled';
    state.members['a/a2']!.admin = 'draining';
    proxy.reapply(proxy.raw, state);
    assert.deepEqual(await tally(proxy.port, 3, { host: 'rr.test' }), { s1: 3 });
  });
});
