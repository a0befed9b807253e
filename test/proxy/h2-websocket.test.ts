// WebSocket over HTTP/2 (RFC 8441, h2-tunnel.ts): an extended CONNECT from Node's HTTP/2 client becomes
// an HTTP/1.1 Upgrade to a WebSocket echo member, and the stream a tunnel; other answers are relayed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { IncomingHttpHeaders as Http1Headers } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSigned } from '../support/certs.js';
import { connectH2 } from '../support/h2.js';
import { startMember, type TestMember } from '../support/members.js';
import { launchChromium } from '../support/chromium.js';
import { findPeer, requirePeer } from '../support/peers.js';
import { accessEntries, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { echoWebSockets, frameText, maskedFrame } from '../support/websocket.js';

const openssl = findPeer('openssl', 'openssl');

describe('WebSocket over HTTP/2', { skip: openssl.skip }, () => {
  let dir: string;
  let member: TestMember;
  let proxy: TestProxy;
  let port: number;
  let session: ClientHttp2Session;
  const handshakes: Http1Headers[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-h2-ws-'));
    member = await startMember('ws');
    // /denied answers 403, /forged a 101 with a wrong Sec-WebSocket-Accept.
    echoWebSockets(member.server, {
      intercept: (req, socket) => {
        handshakes.push(req.headers);
        if (req.url !== '/denied') return false;
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\ndenied\n');
        return true;
      },
      key: (req) => (req.url === '/forged' ? 'not the key' : String(req.headers['sec-websocket-key'])),
      headers: (req) => (req.headers['sec-websocket-protocol'] === 'chat' ? 'Sec-WebSocket-Protocol: chat\r\n' : ''),
    });
    proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'shop.test') },
      clusters: { c: { members: [{ url: member.url, route: 'w1' }] } },
      health: { enabled: false },
      // A quiet tunnel outlives the connection's idle timeout: timeouts.tunnel is its own.
      timeouts: { idle: '500ms' },
      access_log: { target: join(dir, 'access.log'), format: 'json' },
      sites: { shop: { hosts: ['shop.test'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    port = proxy.handle.addresses().https[0]!.port;
    session = await connectH2(port);
  });
  after(async () => {
    session?.destroy();
    await proxy?.handle.close(1000);
    await member?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tunnels = () => proxy.handle.stats().members[0]!.openTunnels;

  /** An extended CONNECT on the session: the stream, its response headers, and its data as frames come. */
  async function connect(path: string, headers: Record<string, string> = {}) {
    const stream: ClientHttp2Stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':path': path,
        ':authority': 'shop.test',
        'sec-websocket-version': '13',
        ...headers,
      },
      { endStream: false },
    );
    stream.on('error', () => {});
    const queue: Buffer[] = [];
    stream.on('data', (data: Buffer) => queue.push(data));
    const [response] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    const next = async () => {
      await waitFor(() => queue.length > 0, 5000, 'a frame from the member');
      return queue.shift()!;
    };
    return { stream, response, next, queue };
  }

  it('is offered: the server sends SETTINGS_ENABLE_CONNECT_PROTOCOL', () => {
    assert.equal(session.remoteSettings.enableConnectProtocol, true);
  });

  it('tunnels to the member over an HTTP/1.1 Upgrade with a key of its own, and counts the tunnel', async () => {
    const before = handshakes.length;
    const { stream, response, next } = await connect('/chat', { 'sec-websocket-protocol': 'chat' });
    assert.equal(response[':status'], 200);
    assert.equal(response['sec-websocket-protocol'], 'chat', "the member's subprotocol");
    assert.equal(response['sec-websocket-accept'], undefined, 'no accept: HTTP/2 has no key');
    const seen = handshakes[before]!;
    assert.equal(seen.upgrade, 'websocket');
    assert.match(String(seen.connection), /upgrade/i);
    assert.match(String(seen['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/, 'a fresh 16-byte key');
    assert.equal(seen['x-forwarded-proto'], 'https');
    assert.equal(seen['x-forwarded-host'], 'shop.test');
    stream.write(maskedFrame('hello over h2'));
    assert.equal(frameText(await next()), 'hello over h2');
    assert.equal(tunnels(), 1, 'counted on its member, for drains');
    stream.close();
    await waitFor(() => tunnels() === 0, 5000, 'the tunnel to be uncounted');
    const [entry] = await accessEntries(join(dir, 'access.log'));
    assert.deepEqual(
      [entry!.method, entry!.path, entry!.httpVersion, entry!.status, entry!.member],
      ['CONNECT', '/chat', '2.0', 200, 'c/w1'],
    );
  });

  it('keeps a quiet tunnel past timeouts.idle, and closes it when a drain closes tunnels', async () => {
    const { stream, next } = await connect('/chat');
    // A bounded look for a close that must not come: twice the connection's idle timeout.
    await new Promise((r) => setTimeout(r, 1000));
    stream.write(maskedFrame('still here'));
    assert.equal(frameText(await next()), 'still here');
    const closed = once(stream, 'close');
    assert.equal(await proxy.handle.closeTunnels(['c/w1'], { batch: 10, intervalMs: 0 }), 1);
    await closed;
    assert.equal(tunnels(), 0);
  });

  it("relays the member's refusal as an ordinary answer on the stream", async () => {
    const { stream, response, queue } = await connect('/denied');
    assert.equal(response[':status'], 403);
    await once(stream, 'end');
    assert.equal(Buffer.concat(queue).toString(), 'denied\n');
    const entries = await accessEntries(join(dir, 'access.log'), 3);
    assert.equal(entries.find((e) => e.path === '/denied')?.status, 403, 'logged with the status relayed');
  });

  it('answers 502 to a 101 whose Sec-WebSocket-Accept does not answer its key', async () => {
    const { response } = await connect('/forged');
    assert.equal(response[':status'], 502);
    await waitFor(() => tunnels() === 0, 5000, 'no tunnel left');
  });

  it('refuses a plain CONNECT (405) and another :protocol (501)', async () => {
    const plain = session.request({ ':method': 'CONNECT', ':authority': 'shop.test:443' }, { endStream: false });
    plain.on('error', () => {});
    const [plainResponse] = (await once(plain, 'response')) as [IncomingHttpHeaders];
    assert.equal(plainResponse[':status'], 405);
    const { response } = await connect('/chat', { ':protocol': 'connect-udp' });
    assert.equal(response[':status'], 501);
  });
});

describe('WebSocket over HTTP/2 in Chromium', { skip: openssl.skip }, () => {
  it('opens its WebSocket on the HTTP/2 connection of the page, through to the member', async (t) => {
    const chromium = requirePeer(t, 'chromium', 'chromium');
    if (!chromium) return;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-h2-ws-chromium-'));
    const member = await startMember('page', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>chat</title>');
    });
    const handshakes: Http1Headers[] = [];
    echoWebSockets(member.server, {
      intercept: (req) => {
        handshakes.push(req.headers);
        return false;
      },
    });
    const proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'shop.test') },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: { shop: { hosts: ['shop.test'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    const port = proxy.handle.addresses().https[0]!.port;
    const browser = await launchChromium(chromium, ['--host-resolver-rules=MAP shop.test 127.0.0.1']);
    try {
      const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      const devtools = await page.context().newCDPSession(page);
      const handshakeStatuses: number[] = [];
      devtools.on('Network.webSocketHandshakeResponseReceived', (event) =>
        handshakeStatuses.push(event.response.status),
      );
      await devtools.send('Network.enable');
      await page.goto(`https://shop.test:${port}/`);
      const protocol = await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol");
      assert.equal(protocol, 'h2', 'the page came over HTTP/2');
      const echo = await page.evaluate(
        (url) =>
          new Promise<string>((resolve, reject) => {
            const socket = new WebSocket(url);
            socket.onopen = () => socket.send('hello from Chromium');
            socket.onmessage = (event) => {
              resolve(String(event.data));
              socket.close();
            };
            socket.onerror = () => reject(new Error('WebSocket failed'));
          }),
        `wss://shop.test:${port}/chat`,
      );
      assert.equal(echo, 'hello from Chromium');
      assert.equal(handshakes.length, 1, 'the handshake reached the member');
      // The handshake's answer as Chromium saw it: 200 on an HTTP/2 stream (a 101 would be HTTP/1.1).
      assert.deepEqual(handshakeStatuses, [200]);
    } finally {
      await browser.close();
      await proxy.handle.close(1000);
      await member.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('WebSocket over HTTP/2, turned off', { skip: openssl.skip }, () => {
  it('does not send SETTINGS_ENABLE_CONNECT_PROTOCOL with http2.websocket false', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-h2-ws-off-'));
    const proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'shop.test') },
      clusters: { c: { members: [{ url: 'http://127.0.0.1:9' }] } },
      health: { enabled: false },
      http2: { websocket: false },
      sites: { shop: { hosts: ['shop.test'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    const session = await connectH2(proxy.handle.addresses().https[0]!.port);
    try {
      assert.notEqual(session.remoteSettings.enableConnectProtocol, true);
    } finally {
      session.destroy();
      await proxy.handle.close(1000);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
