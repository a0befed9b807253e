import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { accessEntries, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { rawExchange } from '../support/raw-http.js';
import { maskedFrame, echoWebSockets } from '../support/websocket.js';

describe('WebSocket and Upgrade tunnels', () => {
  let member: TestMember;
  let proxy: TestProxy;
  let dir: string;
  /** The same, with a 1 s tunnel idle timeout. */
  let quiet: TestProxy;
  const upgrades: Record<string, string | string[] | undefined>[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-tunnel-'));
    member = await startMember('ws');
    echoWebSockets(member.server, {
      intercept: (req) => {
        upgrades.push(req.headers);
        return false;
      },
    });
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url, route: 'w1' }] } },
      health: { enabled: false },
      access_log: { target: join(dir, 'access.log'), format: 'json' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    quiet = await startTestProxy({
      clusters: { c: { members: [{ url: member.url, route: 'w1' }] } },
      health: { enabled: false },
      timeouts: { tunnel: '1s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await quiet?.handle.close(1000);
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(port = proxy.port): Promise<{ socket: net.Socket; next: () => Promise<Buffer>; head: string }> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const key = Buffer.from('0123456789abcdef').toString('base64');
    socket.write(
      `GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const queue: Buffer[] = [];
    let waiting: ((b: Buffer) => void) | undefined;
    let buffered = Buffer.alloc(0);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!head) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        head = buffered.subarray(0, end).toString();
        buffered = buffered.subarray(end + 4);
      }
      while (buffered.length >= 2 && buffered.length >= 2 + buffered[1]!) {
        const f = buffered.subarray(0, 2 + buffered[1]!);
        buffered = buffered.subarray(2 + buffered[1]!);
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w(f);
        } else queue.push(f);
      }
    });
    const next = () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise<Buffer>((r) => (waiting = r)));
    await waitFor(() => head !== '', 5000, 'handshake');
    return { socket, next, head };
  }

  it('tunnels a WebSocket handshake and echoes frames both ways', async () => {
    const { socket, next, head } = await open();
    assert.match(head, /^HTTP\/1\.1 101/);
    assert.match(head, /Sec-WebSocket-Accept: /i);
    assert.equal(upgrades.at(-1)!.upgrade, 'websocket');
    assert.equal(upgrades.at(-1)!['x-forwarded-for'], '127.0.0.1');
    socket.write(maskedFrame('hello'));
    assert.equal((await next()).subarray(2).toString(), 'hello');
    socket.write(maskedFrame('again'));
    assert.equal((await next()).subarray(2).toString(), 'again');
    socket.destroy();
    await waitFor(() => proxy.handle.stats().members[0]!.openTunnels === 0, 5000, 'the tunnel to close');
    // Logged once over, as HAProxy and nginx log a WebSocket: 101, what the member sent, how long.
    const [entry] = await accessEntries(join(dir, 'access.log'));
    assert.deepEqual(
      [entry!.method, entry!.path, entry!.httpVersion, entry!.status, entry!.member, entry!.site],
      ['GET', '/chat', '1.1', 101, 'c/w1', 's'],
    );
    assert.ok(entry!.bytes > 20, `${entry!.bytes} bytes from the member: its 101 and two frames`);
  });

  it('a client that resets the connection while its upgrade is refused does not bring the proxy down', async () => {
    for (let i = 0; i < 5; i++) {
      const socket = net.connect(proxy.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET /chat HTTP/1.1\r\nHost: nobody.invalid\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      socket.resetAndDestroy();
    }
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /chat HTTP/1.1\r\nHost: nobody.invalid\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    const [answer] = (await once(socket, 'data')) as [Buffer];
    assert.match(answer.toString(), /^HTTP\/1\.1 404 /);
    socket.destroy();
  });

  it('counts open tunnels per member and closes them on request', async () => {
    const a = await open();
    const b = await open();
    const tunnels = () => proxy.handle.stats().members.find((m) => m.key === 'c/w1')!.openTunnels;
    await waitFor(() => tunnels() === 2, 5000, 'two tunnels');
    const closed = Promise.all([once(a.socket, 'close'), once(b.socket, 'close')]);
    assert.equal(await proxy.handle.closeTunnels(['c/w1'], { batch: 1, intervalMs: 10 }), 2);
    await closed;
    await waitFor(() => tunnels() === 0, 5000, 'tunnels gone');
  });

  it('closes a tunnel after timeouts.tunnel without a byte either way, and not while bytes flow', async () => {
    const { socket, next, head } = await open(quiet.port);
    assert.match(head, /^HTTP\/1\.1 101/);
    let closed = false;
    socket.once('close', () => (closed = true));
    // Twice the timeout of traffic, a frame each way every 300 ms: the tunnel stays open.
    const until = Date.now() + 2000;
    let lastByte = 0;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 300));
      socket.write(maskedFrame('ping'));
      assert.equal((await next()).subarray(2).toString(), 'ping');
      lastByte = Date.now();
    }
    assert.equal(closed, false, 'closed while bytes were flowing');
    await waitFor(() => closed, 10_000, 'the idle tunnel to close');
    assert.ok(Date.now() - lastByte >= 900, 'closed before the tunnel timeout');
    await waitFor(() => quiet.handle.stats().members[0]!.openTunnels === 0, 5000, 'the tunnel to be uncounted');
  });

  it('relays a refused upgrade as an ordinary answer (body decoded, hop-by-hop headers dropped) and closes', async () => {
    // A member that refuses the upgrade with a chunked 404 and would keep the connection alive.
    const refusing = net.createServer((socket) => {
      socket.once('data', () =>
        socket.write(
          'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=60\r\nX-Why: no ws here\r\n\r\n5\r\nnope \r\n4\r\nhere\r\n0\r\n\r\n',
        ),
      );
      socket.on('error', () => undefined);
    });
    refusing.listen(0, '127.0.0.1');
    await once(refusing, 'listening');
    const own = await startTestProxy({
      clusters: { c: { members: [{ url: `http://127.0.0.1:${(refusing.address() as net.AddressInfo).port}` }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      const reply = await rawExchange(
        own.port,
        'GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
      const [head, body] = reply.split('\r\n\r\n');
      assert.match(head!, /^HTTP\/1\.1 404 Not Found\r\n/);
      assert.match(head!, /\r\nX-Why: no ws here(\r\n|$)/);
      assert.match(head!, /\r\nconnection: close(\r\n|$)/);
      assert.doesNotMatch(head!, /transfer-encoding|keep-alive/i);
      assert.equal(body, 'nope here');
    } finally {
      await own.handle.close(1000);
      refusing.close();
    }
  });
});
