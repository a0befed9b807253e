// A busy member's queue, on real sockets: requests past limits.pool_max wait at most limits.queue deep
// and timeouts.queue long, then get 503 without reaching the member; and a busy member is healthy, so
// neither counts as its failure nor ejects it.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { echoName, routes, startMember, type TestMember } from '../support/members.js';
import { startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { rawExchange as raw, statuses } from '../support/raw-http.js';

describe("a member's queue", () => {
  let member: TestMember;
  /** Answers the member holds until a test releases them. */
  const held: ServerResponse[] = [];
  const proxies: Record<string, TestProxy> = {};

  before(async () => {
    const hold = routes({ '/hold': (req, res) => (req.resume(), held.push(res)) }, (req, res) => {
      req.resume();
      res.end('ok');
    });
    member = await startMember('m', hold);
    const base = {
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      // One failure would eject the member: a busy member must not count one.
      passive: { failures: 1 },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    };
    // A long queue timeout: a 503 within the exchange's 5 s comes from the bound.
    proxies.bounded = await startTestProxy({ ...base, limits: { pool_max: 1, queue: 1 }, timeouts: { queue: '30s' } });
    proxies.timed = await startTestProxy({ ...base, limits: { pool_max: 1, queue: 10 }, timeouts: { queue: '1s' } });
  });
  after(async () => {
    for (const res of held.splice(0)) res.end();
    for (const proxy of Object.values(proxies)) await proxy.handle.close(1000);
    await member?.close();
  });

  const stats = (proxy: TestProxy) => proxy.handle.stats().members[0]!;
  /** Releases the oldest held answer once the member has it. */
  async function releaseOne(): Promise<void> {
    await waitFor(() => held.length > 0, 10_000, 'a held request at the member');
    held.shift()!.end('released');
  }
  // The lane takes an HTTP/1.1 GET; Node's server an HTTP/1.0 one.
  const paths = {
    lane: (path: string) => `GET ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`,
    node: (path: string) => `GET ${path} HTTP/1.0\r\nHost: example.com\r\n\r\n`,
  };

  for (const [name, request] of Object.entries(paths)) {
    it(`answers 503 at once past limits.queue, sends the member nothing of it, and does not eject it (${name})`, async () => {
      const proxy = proxies.bounded!;
      const seen = member.received.length;
      const holding = raw(proxy.port, request('/hold'));
      await waitFor(() => member.received.length === seen + 1, 10_000, 'the first request at the member');
      const queued = raw(proxy.port, request('/queued'));
      await waitFor(() => stats(proxy).inFlight === 2, 10_000, 'the second request queued');
      const refused = await raw(proxy.port, request('/refused'));
      assert.deepEqual(statuses(refused), [503], refused.slice(0, 200));
      assert.match(refused, /retry-after: 5\r\n/i);
      assert.equal(member.received.length, seen + 1, 'a request past the queue reached the member');
      await releaseOne();
      assert.deepEqual(statuses(await holding), [200]);
      assert.deepEqual(statuses(await queued), [200], 'the queued request is served once the connection is free');
      assert.deepEqual(
        member.received.slice(seen).map((r) => r.url),
        ['/hold', '/queued'],
      );
      assert.equal(stats(proxy).failures, 0);
      assert.notEqual(stats(proxy).health, 'down');
      assert.deepEqual(statuses(await raw(proxy.port, request('/after'))), [200], 'the member still takes requests');
    });

    it(`answers 503 to a request that waited timeouts.queue, sends the member nothing of it, and does not eject it (${name})`, async () => {
      const proxy = proxies.timed!;
      const seen = member.received.length;
      const holding = raw(proxy.port, request('/hold'));
      await waitFor(() => member.received.length === seen + 1, 10_000, 'the first request at the member');
      const started = Date.now();
      const waited = await raw(proxy.port, request('/waited'));
      const elapsed = Date.now() - started;
      assert.deepEqual(statuses(waited), [503], waited.slice(0, 200));
      assert.ok(elapsed >= 900 && elapsed < 4500, `answered after ${elapsed} ms`);
      assert.equal(member.received.length, seen + 1, 'the request that waited reached the member');
      assert.equal(stats(proxy).failures, 0);
      await releaseOne();
      assert.deepEqual(statuses(await holding), [200]);
      assert.notEqual(stats(proxy).health, 'down');
      assert.deepEqual(statuses(await raw(proxy.port, request('/after'))), [200], 'the member still takes requests');
    });
  }
});

describe("a member's full queue, with another member", () => {
  const members: TestMember[] = [];
  const held: ServerResponse[] = [];
  let proxy: TestProxy;

  before(async () => {
    const handler = routes({ '/hold': (req, res) => (req.resume(), held.push(res)) }, echoName);
    for (const name of ['m1', 'm2']) members.push(await startMember(name, handler));
    proxy = await startTestProxy({
      clusters: { c: { members: members.map((m) => ({ url: m.url, route: m.name })) } },
      health: { enabled: false },
      passive: { failures: 1 },
      limits: { pool_max: 1, queue: 1 },
      timeouts: { queue: '30s' },
      // Sessions bound to m1 by their route suffix, so every request below asks for m1 first.
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'], sticky: { mode: 'route' } }] } },
    });
  });
  after(async () => {
    for (const res of held.splice(0)) res.end();
    await proxy?.handle.close(1000);
    for (const m of members) await m.close();
  });

  it('sends a request past it to the other member, which never reached the busy one, and does not eject the busy one', async () => {
    const request = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: example.com\r\nCookie: JSESSIONID=abc.m1\r\nConnection: close\r\n\r\n`;
    const [m1, m2] = members as [TestMember, TestMember];
    const holding = raw(proxy.port, request('/hold'));
    await waitFor(() => m1.received.length === 1, 10_000, 'the first request at m1');
    const queued = raw(proxy.port, request('/hold'));
    await waitFor(
      () => proxy.handle.stats().members.find((m) => m.id === 'm1')!.inFlight === 2,
      10_000,
      'the second request queued on m1',
    );
    const redispatched = await raw(proxy.port, request('/elsewhere'));
    assert.deepEqual(statuses(redispatched), [200], redispatched.slice(0, 200));
    assert.match(redispatched, /x-member: m2\r\n/i);
    assert.deepEqual(
      m1.received.map((r) => r.url),
      ['/hold'],
    );
    assert.deepEqual(
      m2.received.map((r) => r.url),
      ['/elsewhere'],
    );
    await waitFor(() => held.length === 1, 10_000, 'the held request');
    held.shift()!.end('released');
    await waitFor(() => held.length === 1, 10_000, 'the queued request at m1');
    held.shift()!.end('released');
    assert.deepEqual(statuses(await holding), [200]);
    assert.deepEqual(statuses(await queued), [200]);
    const m1Stats = proxy.handle.stats().members.find((m) => m.id === 'm1')!;
    assert.equal(m1Stats.failures, 0);
    assert.notEqual(m1Stats.health, 'down');
  });
});
