// Listeners with proxy_protocol: raw sockets send PROXY headers (good, malformed, missing, from an
// untrusted peer) on the http listener (the fast lane and Node's path) and the https listener, and a real
// HAProxy in TCP mode sends them with send-proxy and send-proxy-v2.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/ports.js';
import { proxyHeader, V2_SIGNATURE } from '../../src/proxy/proxy-protocol.js';
import { qaTargetFor } from '../../src/release/checks.js';
import { selfSigned } from '../support/certs.js';
import { startHaproxy } from '../support/haproxy.js';
import { startMember, type TestMember } from '../support/members.js';
import { requirePeer } from '../support/peers.js';
import { loadObject, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { statuses } from '../support/raw-http.js';

const CLIENT = { address: '203.0.113.7', port: 40000, family: 'IPv4' } as const;
const DENIED = { address: '198.51.100.9', port: 40001, family: 'IPv4' } as const;
const DEST = { address: '192.0.2.1', port: 80, family: 'IPv4' } as const;
const GET = 'GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n';
const POST = 'POST / HTTP/1.1\r\nHost: site.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc';

/**
 * Sends `first` on a fresh connection (then `request` over TLS when `secure`), and resolves with all the
 * peer sent before closing; the socket is cut after 10 s so a proxy that waits fails the test.
 */
async function exchange(
  port: number,
  first: Buffer | string,
  request = '',
  options: { secure?: boolean; localAddress?: string } = {},
): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
  await once(socket, 'connect');
  socket.on('error', () => undefined);
  socket.write(first);
  const stream: net.Socket = options.secure
    ? tls.connect({ socket, servername: 'site.test', rejectUnauthorized: false })
    : socket;
  stream.on('error', () => undefined);
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.setTimeout(10_000, () => socket.destroy());
  const closed = once(socket, 'close');
  if (request) stream.write(request);
  await closed;
  return text;
}

describe('a listener with proxy_protocol', () => {
  let dir: string;
  let member: TestMember;
  let proxy: TestProxy;
  let httpPort: number;
  let httpsPort: number;
  let plainPort: number;
  let logFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-proxy-protocol-'));
    const cert = selfSigned(dir, 'site', 'site.test');
    logFile = join(dir, 'access.log');
    member = await startMember('m', (req, res) => {
      req.resume();
      res.end(JSON.stringify({ xff: req.headers['x-forwarded-for'], forwarded: req.headers.forwarded }));
    });
    proxy = await startTestProxy({
      listen: {
        http: [{ address: '127.0.0.1:0', proxy_protocol: true }, '127.0.0.1:0'],
        https: { address: '127.0.0.1:0', proxy_protocol: true },
      },
      trusted_proxies: ['127.0.0.1'],
      forward_headers: { forwarded: true },
      timeouts: { idle: '1s' },
      access_log: { target: logFile },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: {
        s: {
          hosts: ['site.test'],
          tls: cert,
          deny: [`${DENIED.address}/32`, '127.0.0.3'],
          routes: [{ path: '/', clusters: ['c'] }],
        },
      },
    });
    const addresses = proxy.handle.addresses();
    httpPort = addresses.http[0]!.port;
    plainPort = addresses.http[1]!.port;
    httpsPort = addresses.https[0]!.port;
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The member's view of the one request a reply answered. */
  const seen = (reply: string) =>
    JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { xff?: string; forwarded?: string };

  for (const [name, request] of [
    ['the fast lane', GET],
    ["Node's path (a body)", POST],
  ] as const) {
    for (const version of ['v1', 'v2'] as const) {
      it(`takes the client address from a ${version} header (${name})`, async () => {
        const reply = await exchange(
          httpPort,
          Buffer.concat([proxyHeader(version, CLIENT, DEST), Buffer.from(request)]),
        );
        assert.deepEqual(statuses(reply), [200], reply);
        assert.deepEqual(seen(reply), {
          xff: CLIENT.address,
          forwarded: `for=${CLIENT.address};proto=http;host="site.test"`,
        });
      });
    }

    it(`applies deny to the header's address (${name})`, async () => {
      const before = member.received.length;
      const reply = await exchange(httpPort, Buffer.concat([proxyHeader('v2', DENIED, DEST), Buffer.from(request)]));
      assert.deepEqual(statuses(reply), [403], reply);
      assert.equal(member.received.length, before);
    });
  }

  it('takes the header and the request in separate writes', async () => {
    const socket = net.connect(httpPort, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const header = proxyHeader('v2', CLIENT, DEST);
    socket.write(header.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 50));
    socket.write(header.subarray(10));
    await new Promise((r) => setTimeout(r, 50));
    socket.end(GET);
    await once(socket, 'close');
    assert.equal(seen(text).xff, CLIENT.address);
  });

  it('answers a request sent with the header and a FIN in one write', async () => {
    const socket = net.connect(httpPort, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.end(Buffer.concat([proxyHeader('v1', CLIENT, DEST), Buffer.from(GET)]));
    await once(socket, 'close');
    assert.deepEqual(statuses(text), [200], text);
    assert.equal(seen(text).xff, CLIENT.address);
  });

  it('writes the header address in the access log', async () => {
    await exchange(
      httpPort,
      Buffer.concat([proxyHeader('v1', { ...CLIENT, address: '203.0.113.99' }, DEST), Buffer.from(GET)]),
    );
    await waitFor(
      async () => (await readFile(logFile, 'utf8').catch(() => '')).includes('203.0.113.99 - - ['),
      5000,
      'the access log line',
    );
  });

  for (const version of ['v1', 'v2'] as const) {
    it(`reads a ${version} header before the TLS handshake on the https listener`, async () => {
      const reply = await exchange(httpsPort, proxyHeader(version, CLIENT, DEST), GET, { secure: true });
      assert.deepEqual(statuses(reply), [200], reply);
      assert.deepEqual(seen(reply), {
        xff: CLIENT.address,
        forwarded: `for=${CLIENT.address};proto=https;host="site.test"`,
      });
    });
  }

  it('keeps the connection address for v2 LOCAL and v1 UNKNOWN', async () => {
    const local = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
    assert.equal(seen(await exchange(httpPort, Buffer.concat([local, Buffer.from(GET)]))).xff, '127.0.0.1');
    assert.equal(seen(await exchange(httpPort, `PROXY UNKNOWN\r\n${GET}`)).xff, '127.0.0.1');
    assert.equal(seen(await exchange(httpsPort, local, GET, { secure: true })).xff, '127.0.0.1');
  });

  it('leaves a listener without proxy_protocol as it was', async () => {
    const reply = await exchange(plainPort, GET);
    assert.equal(seen(reply).xff, '127.0.0.1');
    // There, a PROXY line is no header: it is a malformed request line.
    assert.deepEqual(statuses(await exchange(plainPort, proxyHeader('v1', CLIENT, DEST).toString() + GET)), [400]);
  });

  for (const [name, bytes] of [
    ['no header (a plain request)', GET],
    ['no header (a TLS ClientHello)', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])],
    ['a v1 header with a bad address', `PROXY TCP4 203.0.113.300 192.0.2.1 1 2\r\n${GET}`],
    ['a v1 header with no CRLF', `PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n${GET}${' '.repeat(100)}`],
    [
      'a v2 header of version 3',
      Buffer.concat([V2_SIGNATURE, Buffer.from([0x31, 0x11, 0x00, 0x0c]), Buffer.alloc(12), Buffer.from(GET)]),
    ],
    [
      'a v2 header longer than limits.header_size',
      Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]),
    ],
  ] as const) {
    it(`closes a connection with ${name}, answering nothing`, async () => {
      const before = member.received.length;
      assert.equal(await exchange(httpPort, bytes), '');
      assert.equal(await exchange(httpsPort, bytes), '');
      assert.equal(member.received.length, before);
    });
  }

  it('closes a connection whose header is not complete within the head timeout', async () => {
    const started = Date.now();
    assert.equal(await exchange(httpPort, 'PROXY TCP4 203.0.113.7'), '');
    assert.ok(Date.now() - started < 9000, 'closed by the proxy, not by the test');
  });

  it('closes a connection from a peer not in trusted_proxies, even with a valid header', async () => {
    const before = member.received.length;
    const header = proxyHeader('v1', CLIENT, DEST);
    assert.equal(
      await exchange(httpPort, Buffer.concat([header, Buffer.from(GET)]), '', { localAddress: '127.0.0.2' }),
      '',
    );
    assert.equal(await exchange(httpsPort, header, '', { localAddress: '127.0.0.2' }), '');
    assert.equal(member.received.length, before);
  });
});

describe('HAProxy in TCP mode in front, with send-proxy and send-proxy-v2', () => {
  it('passes the original client address: X-Forwarded-For and deny, over http and https', async (t) => {
    const binary = requirePeer(t, 'haproxy', 'haproxy');
    if (!binary) return;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-proxy-protocol-'));
    const member = await startMember('m', (req, res) => {
      req.resume();
      res.end(String(req.headers['x-forwarded-for']));
    });
    const proxy = await startTestProxy({
      listen: {
        http: { address: '127.0.0.1:0', proxy_protocol: true },
        https: { address: '127.0.0.1:0', proxy_protocol: true },
      },
      trusted_proxies: ['127.0.0.1'],
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: {
        s: {
          hosts: ['site.test'],
          tls: selfSigned(dir, 'site', 'site.test'),
          deny: ['127.0.0.3'],
          routes: [{ path: '/', clusters: ['c'] }],
        },
      },
    });
    const { http, https } = proxy.handle.addresses();
    const ports = { v1: await freePort(), v2: await freePort(), v1tls: await freePort(), v2tls: await freePort() };
    // HAProxy connects to Dayshift from 127.0.0.1 (trusted); clients connect to it from 127.0.0.2 and .3.
    const lb = await startHaproxy(
      binary,
      [
        ['v1', ports.v1, http[0]!.port, 'send-proxy'],
        ['v2', ports.v2, http[0]!.port, 'send-proxy-v2'],
        ['v1tls', ports.v1tls, https[0]!.port, 'send-proxy'],
        ['v2tls', ports.v2tls, https[0]!.port, 'send-proxy-v2'],
      ]
        .map(([name, port, to, send]) =>
          [
            `listen ${name}`,
            '    mode tcp',
            `    bind 127.0.0.1:${port}`,
            `    server dayshift 127.0.0.1:${to} ${send} source 127.0.0.1`,
          ].join('\n'),
        )
        .join('\n'),
    );
    try {
      for (const [name, port, secure] of [
        ['send-proxy', ports.v1, false],
        ['send-proxy-v2', ports.v2, false],
        ['send-proxy, TLS', ports.v1tls, true],
        ['send-proxy-v2, TLS', ports.v2tls, true],
      ] as const) {
        const reply = await exchange(port, secure ? '' : GET, secure ? GET : '', { secure, localAddress: '127.0.0.2' });
        assert.deepEqual(statuses(reply), [200], `${name}: ${reply}`);
        assert.ok(
          reply.endsWith('\r\n\r\n127.0.0.2'),
          `${name}: the member saw ${JSON.stringify(reply.slice(reply.indexOf('\r\n\r\n') + 4))}`,
        );
        const denied = await exchange(port, secure ? '' : GET, secure ? GET : '', {
          secure,
          localAddress: '127.0.0.3',
        });
        assert.deepEqual(statuses(denied), [403], `${name}: ${denied}`);
      }
    } finally {
      await lb.stop();
      await proxy.handle.close(1000);
      await member.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('QA checks and proxy_protocol listeners', () => {
  const config = (http: unknown) =>
    loadObject({
      listen: { http },
      trusted_proxies: ['10.0.0.5'],
      clusters: { a: { members: [{ url: 'http://127.0.0.1:1' }] } },
      sites: { qa: { hosts: ['qa.test'], routes: [{ path: '/', clusters: ['a'] }] } },
    }).config;

  it('connect to the first http listener without proxy_protocol, which takes them', () => {
    assert.equal(
      qaTargetFor(config([{ address: '127.0.0.1:8081', proxy_protocol: true }, '127.0.0.1:8082']), 'a').origin,
      'http://127.0.0.1:8082',
    );
  });

  it('say what to do when every http listener takes the PROXY protocol', () => {
    assert.throws(
      () => qaTargetFor(config({ address: '127.0.0.1:8081', proxy_protocol: true }), 'a'),
      /no http listener to send QA checks to .*qa_url and qa_connect/,
    );
  });
});

it('refuses a proxy_protocol listener when trusted_proxies is empty, saying why', () => {
  assert.throws(
    () =>
      loadObject({
        listen: { http: [{ address: '127.0.0.1:0', proxy_protocol: true }] },
        clusters: { a: { members: [{ url: 'http://127.0.0.1:1' }] } },
        sites: { s: { hosts: ['*'], routes: [{ path: '/', clusters: ['a'] }] } },
      }),
    /listen\.http\[0\]\.proxy_protocol: .*trusted_proxies, which is empty/,
  );
});
