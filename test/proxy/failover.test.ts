import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { request, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { freePort } from '../../src/ports.js';

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
        mixed: {
          members: [
            { url: `http://127.0.0.1:${deadPort}`, route: 'dead' },
            { url: live.url, route: 'live' },
          ],
        },
        resets: {
          members: [
            { url: resetter.url, route: 'r1' },
            { url: live.url, route: 'l2' },
          ],
        },
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
    await proxy?.handle.close(1000);
    await live.close();
    await resetter.close();
  });

  it('sends a request that never reached a member to another one, whatever its method', async () => {
    for (let i = 0; i < 4; i++) {
      const reply = await request(proxy.port, {
        host: 'mixed.test',
        method: 'POST',
        body: 'abc',
        headers: { 'content-length': '3' },
      });
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
      const reply = await request(proxy.port, {
        host: 'resets.test',
        method: 'POST',
        body: 'x',
        headers: { 'content-length': '1' },
      });
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
    await proxy?.handle.close(1000);
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
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
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
      clusters: {
        c: {
          members: [
            { url: sick.url, route: 's' },
            { url: fine.url, route: 'f' },
          ],
          health: { path: '/health', interval: '50ms', rise: 2, fall: 1 },
        },
      },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
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

describe('retry bounds', () => {
  it('tries at most retries.attempts members, then answers 502', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const proxy = await startTestProxy({
      clusters: { c: { members: ports.map((p) => ({ url: `http://127.0.0.1:${p}` })) } },
      health: { enabled: false },
      retries: { attempts: 2 },
      passive: { failures: 10 },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      assert.equal((await request(proxy.port, {})).status, 502);
      const failures = proxy.handle.stats().members.reduce((n, m) => n + m.failures, 0);
      assert.equal(failures, 2);
    } finally {
      await proxy.handle.close(1000);
    }
  });
});

describe('least-busy through the proxy', () => {
  it('sends new requests away from a member that is holding requests', async () => {
    const held: (() => void)[] = [];
    const slow = await startMember('slow', (req, res) => {
      req.resume();
      held.push(() => res.end('slow 0'));
    });
    const quick = await startMember('quick');
    const proxy = await startTestProxy({
      clusters: { c: { members: [{ url: slow.url }, { url: quick.url }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'], balance: 'least-busy' }] } },
    });
    try {
      const pending: Promise<unknown>[] = [];
      // Round-robin tie-breaking sends one of the first two to each member; the slow one keeps its request.
      pending.push(request(proxy.port, {}), request(proxy.port, {}));
      await waitFor(() => held.length === 1, 5000, 'a request held by the slow member');
      const bodies: string[] = [];
      for (let i = 0; i < 6; i++) bodies.push((await request(proxy.port, {})).body);
      assert.deepEqual(bodies, Array(6).fill('quick 0'));
      for (const release of held) release();
      await Promise.all(pending);
    } finally {
      await proxy.handle.close(1000);
      await slow.close();
      await quick.close();
    }
  });
});

describe('stale keep-alive connections', () => {
  it('retries once on a fresh connection when a reused one is closed before any response byte', async () => {
    // A member that answers the first request on each connection, keeps it alive, and drops the
    // connection without a byte when a second request arrives on it (an idle close racing the reuse).
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      let requests = 0;
      socket.on('data', (data: Buffer) => {
        if (!data.includes('\r\n\r\n')) return;
        if (++requests === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
        else socket.destroy();
      });
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = await startTestProxy({
      clusters: { c: { members: [{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }] } },
      health: { enabled: false },
      retries: { attempts: 1 },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      for (let i = 0; i < 3; i++) {
        const reply = await request(proxy.port, {});
        assert.equal(reply.status, 200, `request ${i}`);
        assert.equal(reply.body, 'ok');
      }
      assert.ok(connections >= 3, 'each retry used a fresh connection');
    } finally {
      await proxy.handle.close(1000);
      server.close();
    }
  });
});
