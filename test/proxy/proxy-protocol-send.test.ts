// Members with proxy_protocol (HAProxy send-proxy / send-proxy-v2): what a raw TCP member receives, byte
// for byte, for requests, keep-alive reuse, WebSocket upgrades and health checks.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/ports.js';
import { proxyHeader, V2_SIGNATURE } from '../../src/proxy/proxy-protocol.js';
import { selfSigned } from '../support/certs.js';
import { startHaproxy } from '../support/haproxy.js';
import { requirePeer } from '../support/peers.js';
import { loadObject, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { startRawMember, statuses, type RawMember } from '../support/raw-http.js';

/** Sends `bytes` from `localAddress` and resolves with the reply once the proxy closes; also gives the client port. */
async function send(
  port: number,
  bytes: Buffer | string,
  localAddress = '127.0.0.1',
): Promise<{ reply: string; clientPort: number }> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await once(socket, 'connect');
  const clientPort = socket.localPort!;
  let reply = '';
  socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
  socket.setTimeout(10_000, () => socket.destroy());
  socket.write(bytes);
  await once(socket, 'close');
  return { reply, clientPort };
}

const request = (path: string, close = false) =>
  `GET ${path} HTTP/1.1\r\nHost: site.test\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;

describe('sending the PROXY protocol to members', () => {
  let v1: RawMember;
  let v2: RawMember;
  let proxy: TestProxy;
  let plainPort: number;
  let ppPort: number;

  before(async () => {
    v1 = await startRawMember();
    v2 = await startRawMember();
    proxy = await startTestProxy({
      listen: { http: ['127.0.0.1:0', { address: '127.0.0.1:0', proxy_protocol: true }] },
      trusted_proxies: ['127.0.0.1'],
      clusters: {
        one: { members: [{ url: v1.url, proxy_protocol: 'v1' }] },
        two: { proxy_protocol: 'v2', members: [{ url: v2.url }] },
      },
      health: { enabled: false },
      sites: {
        one: { hosts: ['site.test'], routes: [{ path: '/', clusters: ['one'] }] },
        two: { hosts: ['two.test'], routes: [{ path: '/', clusters: ['two'] }] },
      },
    });
    const { http } = proxy.handle.addresses();
    plainPort = http[0]!.port;
    ppPort = http[1]!.port;
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await v1?.close();
    await v2?.close();
  });

  it('opens a member connection with a v1 header naming the client, and reuses it for that client only', async () => {
    const start = v1.bytes().length;
    const first = await send(plainPort, request('/a') + request('/b', true), '127.0.0.2');
    assert.deepEqual(statuses(first.reply), [200, 200], first.reply);
    const header = `PROXY TCP4 127.0.0.2 127.0.0.1 ${first.clientPort} ${plainPort}\r\n`;
    const seen = v1.bytes().slice(start);
    // One header, then both requests on the one member connection.
    assert.equal(seen.split('PROXY ').length - 1, 1, seen);
    assert.ok(seen.startsWith(header), seen);
    assert.match(seen, /^GET \/a HTTP\/1\.1\r\n[\s\S]*GET \/b HTTP\/1\.1\r\n/m);
    // Another client connection: its own member connection and header, though the idle one is free.
    const mid = v1.bytes().length;
    const second = await send(plainPort, request('/c', true), '127.0.0.3');
    assert.ok(
      v1
        .bytes()
        .slice(mid)
        .startsWith(`PROXY TCP4 127.0.0.3 127.0.0.1 ${second.clientPort} ${plainPort}\r\nGET /c HTTP/1.1\r\n`),
      v1.bytes().slice(mid),
    );
  });

  it('passes on the client address a PROXY header on the listener gave (cluster-level v2)', async () => {
    const start = v2.bytes().length;
    const client = { address: '203.0.113.7', port: 40000, family: 'IPv4' } as const;
    const listener = { address: '192.0.2.1', port: 443, family: 'IPv4' } as const;
    const { reply } = await send(
      ppPort,
      Buffer.concat([
        proxyHeader('v1', client, listener),
        Buffer.from(request('/', true).replace('site.test', 'two.test')),
      ]),
    );
    assert.deepEqual(statuses(reply), [200], reply);
    const seen = Buffer.from(v2.bytes().slice(start), 'latin1');
    const header = proxyHeader('v2', client, listener);
    assert.ok(seen.subarray(0, header.length).equals(header), seen.toString('latin1'));
    assert.match(
      seen.subarray(header.length).toString('latin1'),
      /^GET \/ HTTP\/1\.1\r\n[\s\S]*x-forwarded-for: 203\.0\.113\.7\r\n/,
    );
  });

  it('opens a WebSocket upgrade with the header too', async () => {
    const start = v1.bytes().length;
    const { reply, clientPort } = await send(
      plainPort,
      'GET /ws HTTP/1.1\r\nHost: site.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.deepEqual(statuses(reply).slice(0, 1), [403], reply);
    assert.ok(
      v1
        .bytes()
        .slice(start)
        .startsWith(`PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${plainPort}\r\nGET /ws HTTP/1.1\r\n`),
      v1.bytes().slice(start),
    );
  });

  it('opens health checks with v2 LOCAL (v1 UNKNOWN)', async () => {
    const member = await startRawMember();
    const checked = await startTestProxy({
      clusters: { c: { proxy_protocol: 'v2', members: [{ url: member.url }] } },
      health: { interval: '100ms' },
      sites: { s: { hosts: ['*'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      const local = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]).toString('latin1');
      await waitFor(() => member.bytes().includes('user-agent: dayshift-health-check'), 10_000, 'a health check');
      assert.ok(member.bytes().startsWith(`${local}GET / HTTP/1.1\r\n`), JSON.stringify(member.bytes().slice(0, 80)));
    } finally {
      await checked.handle.close(1000);
      await member.close();
    }
  });

  it('is understood by HAProxy (accept-proxy), over http and https, in checks too', async (t) => {
    const binary = requirePeer(t, 'haproxy', 'haproxy');
    if (!binary) return;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-proxy-protocol-'));
    const cert = selfSigned(dir, 'member', 'member.test');
    const pem = join(dir, 'member.pem');
    await writeFile(pem, (await readFile(cert.cert, 'utf8')) + (await readFile(cert.key, 'utf8')));
    const ports = { plain: await freePort(), secure: await freePort() };
    // HAProxy as the member: it answers with the client address it took from the PROXY header.
    const lb = await startHaproxy(
      binary,
      [
        'frontend members',
        `    bind 127.0.0.1:${ports.plain} accept-proxy`,
        `    bind 127.0.0.1:${ports.secure} accept-proxy ssl crt ${pem}`,
        '    http-request return status 200 content-type text/plain lf-string "from %[src]"',
        // The start helper's own frontend.
        'frontend unused',
        '    bind 127.0.0.1:{PORT}',
      ].join('\n'),
    );
    const members = await startTestProxy({
      clusters: {
        plain: { proxy_protocol: 'v1', members: [{ url: `http://127.0.0.1:${ports.plain}` }] },
        secure: { proxy_protocol: 'v2', members: [{ url: `https://127.0.0.1:${ports.secure}`, tls_verify: false }] },
      },
      health: { interval: '200ms' },
      sites: {
        plain: { hosts: ['plain.test'], routes: [{ path: '/', clusters: ['plain'] }] },
        secure: { hosts: ['secure.test'], routes: [{ path: '/', clusters: ['secure'] }] },
      },
    });
    try {
      for (const host of ['plain.test', 'secure.test']) {
        const { reply } = await send(
          members.port,
          `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
          '127.0.0.2',
        );
        assert.deepEqual(statuses(reply), [200], `${host}: ${reply}`);
        assert.ok(reply.endsWith('from 127.0.0.2'), `${host}: ${reply}`);
      }
      // Health checks open with LOCAL / UNKNOWN, which HAProxy accepts: both members come up.
      await waitFor(() => members.handle.stats().members.every((m) => m.health === 'up'), 10_000, 'both members up');
    } finally {
      await members.handle.close(1000);
      await lb.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses proxy_protocol on an AJP member', () => {
    assert.throws(
      () =>
        loadObject({
          listen: { http: '127.0.0.1:0' },
          clusters: { c: { proxy_protocol: 'v1', members: [{ url: 'ajp://127.0.0.1:8009' }] } },
          sites: { s: { hosts: ['*'], routes: [{ path: '/', clusters: ['c'] }] } },
        }),
      /proxy_protocol is for http and https members/,
    );
  });
});
