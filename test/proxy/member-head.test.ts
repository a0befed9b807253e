// A member's response head is bounded in size (limits.response_head) and in time (timeouts.first_byte,
// which a trickle of bytes does not extend), on both request paths; the member connection is closed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { rawExchange as raw, statuses } from '../support/raw-http.js';

/** What the hostile member does with a request, by path. */
const behaviours: Record<string, (socket: net.Socket) => void> = {
  // 200 KB of header lines in one go.
  '/huge': (socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200 * 1024)}\r\nContent-Length: 0\r\n\r\n`),
  // A head under the limit is relayed.
  '/large': (socket) =>
    socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(40 * 1024)}\r\nContent-Length: 2\r\n\r\nok`),
  // A header line every 100 ms, forever: every byte would reset an inactivity timer.
  '/trickle': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\n');
    const timer = setInterval(() => socket.write('X-More: yes\r\n'), 100);
    socket.once('close', () => clearInterval(timer));
  },
  // Interim responses every 100 ms and never the final one.
  '/interim': (socket) => {
    const timer = setInterval(
      () => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'),
      100,
    );
    socket.once('close', () => clearInterval(timer));
  },
};

describe("a member's response head", () => {
  let member: net.Server;
  const open = new Set<net.Socket>();
  let proxy: TestProxy;

  before(async () => {
    member = net.createServer((socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => undefined);
      let head = '';
      socket.on('data', (data: Buffer) => {
        head += data.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const path = head.split(' ', 2)[1]!;
        head = head.slice(end + 4).replace(/^abc/, '');
        behaviours[path]!(socket);
      });
    });
    member.listen(0, '127.0.0.1');
    await once(member, 'listening');
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: `http://127.0.0.1:${(member.address() as AddressInfo).port}` }] } },
      health: { enabled: false },
      // Every failure here is the point of a test: none may eject the only member.
      passive: { failures: 1000 },
      timeouts: { first_byte: '1s', idle: '10s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    for (const socket of open) socket.destroy();
    member.close();
  });

  const requests = {
    lane: (path: string) => `GET ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`,
    node: (path: string) =>
      `POST ${path} HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
  };

  for (const [name, request] of Object.entries(requests)) {
    it(`answers 502 to a head over limits.response_head and closes the member connection (${name})`, async () => {
      const reply = await raw(proxy.port, request('/huge'));
      assert.deepEqual(statuses(reply), [502], reply.slice(0, 200));
      assert.ok(!reply.includes('aaaa'), 'the huge header reached the client');
      await waitFor(() => open.size === 0, 5000, 'the member connection to close');
    });

    it(`relays a head within the limit (${name})`, async () => {
      const reply = await raw(proxy.port, request('/large'));
      assert.deepEqual(statuses(reply), [200], reply.slice(0, 200));
      assert.ok(reply.endsWith('ok'));
    });

    for (const path of ['/trickle', '/interim']) {
      it(`answers 504 when a head trickles past first_byte, and closes the member connection (${path}, ${name})`, async () => {
        const started = Date.now();
        const reply = await raw(proxy.port, request(path));
        const elapsed = Date.now() - started;
        assert.deepEqual(statuses(reply), [504], reply.slice(0, 200));
        // first_byte is 1 s: the trickle (a byte every 100 ms) must not have extended it.
        assert.ok(elapsed < 3000, `answered after ${elapsed} ms`);
        await waitFor(() => open.size === 0, 5000, 'the member connection to close');
      });
    }
  }
});
