import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, startMember, type TestMember } from '../support/members.js';
import { request, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';

describe('retries, passive ejection and failover', () => {
  let live: TestMember;
  let resetter: TestMember;
  let proxy: TestProxy;
  let deadPort: number;

  before(async () => {
    live = await startMember('live');
    // Reads the whole request, then resets the connection without answering.
    resetter = await startMember('reset', (req) => {
      req.resume();
      req.on('end', () => req.socket.destroy());
    });
    deadPort = await freePort();
    proxy = await startTestProxy({
      clusters: {
        mixed: { members: [{ url: `http://127.0.0.1:${deadPort}`, route: 'dead' }, { url: live.url, route: 'live' }] },
        resets: { members: [{ url: resetter.url, route: 'r1' }, { url: live.url, route: 'l2' }] },
      },
      health: { enabled: false },
      passive: { failures: 2, ejection: '1m' },
      sites: {
        mixed: { hosts: ['mixed.test'], routes: [{ path: '/', clusters: ['mixed'] }] },
        resets: { hosts: ['resets.test'], routes: [{ path: '/', clusters: ['resets'] }] },
      },
    });
  });
  after(async () => {
    await proxy.handle.close(1000);
    await live.close();
    await resetter.close();
  });

  it('sends a request that never reached a member to another one, whatever its method', async () => {
    for (let i = 0; i < 4; i++) {
      const reply = await request(proxy.port, { host: 'mixed.test', method: 'POST', body: 'abc', headers: { 'content-length': '3' } });
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'live 3');
    }
  });

  it('ejects a member after consecutive connect failures', async () => {
    const stats = proxy.handle.stats().members.find((m) => m.key === 'mixed/dead')!;
    assert.equal(stats.health, 'down');
    assert.match(stats.healthReason ?? '', /ejected/);
    assert.ok(stats.failures >= 2);
  });

  it('retries an idempotent request that failed before response headers, on another member', async () => {
    const before = resetter.received.length;
    for (let i = 0; i < 4; i++) assert.equal((await request(proxy.port, { host: 'resets.test' })).body, 'live 0');
    assert.ok(resetter.received.length > before, 'the resetting member was tried');
  });

  it('does not retry a non-idempotent request once it reached a member', async () => {
    const before = resetter.received.length;
    let failed = 0;
    for (let i = 0; i < 4; i++) {
      const reply = await request(proxy.port, { host: 'resets.test', method: 'POST', body: 'x', headers: { 'content-length': '1' } });
      if (reply.status === 502) failed++;
      else assert.equal(reply.body, 'live 1');
    }
    assert.equal(resetter.received.length - before, failed, 'each POST the resetter saw was answered 502, not re-sent');
    assert.ok(failed > 0);
  });
});

describe('a member dying under load', () => {
  let a: TestMember;
  let b: TestMember;
  let proxy: TestProxy;

  before(async () => {
    a = await startMember('a');
    b = await startMember('b');
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: a.url }, { url: b.url }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'], balance: 'least-busy' }] } },
    });
  });
  after(async () => {
    await proxy.handle.close(1000);
    await b.close();
  });

  it('keeps answering GETs when a member is killed mid-test', async () => {
    const statuses: number[] = [];
    let stop = false;
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) statuses.push((await request(proxy.port, {})).status);
    });
    await waitFor(() => statuses.length >= 50, 10_000, '50 requests');
    await a.close();
    const mark = statuses.length;
    await waitFor(() => statuses.length >= mark + 100, 10_000, '100 requests after the kill');
    stop = true;
    await Promise.all(workers);
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
  });
});

describe('active health checks', () => {
  let healthy = true;
  let sick: TestMember;
  let fine: TestMember;
  let proxy: TestProxy;

  before(async () => {
    sick = await startMember('sick', (req, res) => {
      if (req.url === '/health') {
        res.writeHead(healthy ? 200 : 500);
        res.end();
        return;
      }
      res.end('sick 0');
    });
    fine = await startMember('fine');
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: sick.url, route: 's' }, { url: fine.url, route: 'f' }], health: { path: '/health', interval: '50ms', rise: 2, fall: 1 } } },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy.handle.close(1000);
    await sick.close();
    await fine.close();
  });

  const health = (key: string) => proxy.handle.stats().members.find((m) => m.key === key)?.health;

  it('takes a member that fails its check out, and back after `rise` passes', async () => {
    await waitFor(() => health('c/s') === 'up' && health('c/f') === 'up', 5000, 'both up');
    healthy = false;
    await waitFor(() => health('c/s') === 'down', 5000, 'sick down');
    for (let i = 0; i < 6; i++) assert.equal((await request(proxy.port, {})).body, 'fine 0');
    assert.match(proxy.handle.stats().members.find((m) => m.key === 'c/s')!.healthReason ?? '', /500/);
    healthy = true;
    await waitFor(() => health('c/s') === 'up', 5000, 'sick up again');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(proxy.port, {})).body);
    assert.deepEqual([...seen].sort(), ['fine 0', 'sick 0']);
  });
});
