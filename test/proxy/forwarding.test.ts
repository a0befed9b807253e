import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { routes, startMember, type TestMember } from '../support/members.js';
import { accessEntries, request, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { freePort } from '../../src/ports.js';
import { rawExchange } from '../support/raw-http.js';

describe('forwarding', () => {
  let member: TestMember;
  let proxy: TestProxy;
  let refused: number;

  before(async () => {
    member = await startMember(
      'm1',
      routes(
        {
          '/redirect': (_req, res, self) => {
            res.writeHead(302, {
              location: `${self.url}/next?a=1`,
              'content-location': `${self.url}/here`,
              refresh: `3; url=${self.url}/later`,
            });
            res.end();
          },
          '/cookie': (_req, res) => {
            res.setHeader('set-cookie', ['a=1; Domain=internal.local; Path=/app/x', 'b=2; Path=/other']);
            res.end('ok');
          },
          '/nocontent': (_req, res) => {
            res.writeHead(204);
            res.end();
          },
          '/notmodified': (_req, res) => {
            res.writeHead(304, { etag: '"x"' });
            res.end();
          },
          '/hop': (_req, res) => {
            res.writeHead(200, {
              connection: 'x-secret, keep-alive',
              'x-secret': 'member-only',
              'keep-alive': 'timeout=5',
              'content-type': 'text/plain',
            });
            res.end('hop');
          },
          '/cut': (req, res) => {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('the first half', () => req.socket.destroy());
          },
          '/slow': (_req, res) => {
            setTimeout(() => res.end('late'), 10_000).unref();
          },
        },
        // Anything else: what the member received, as JSON.
        (req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                method: req.method,
                url: req.url,
                headers: req.headers,
                body: Buffer.concat(chunks).toString(),
              }),
            );
          });
        },
      ),
    );
    refused = await freePort();
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] }, dead: { members: [{ url: `http://127.0.0.1:${refused}` }] } },
      health: { enabled: false },
      // Every other request here is answered at once; 1 s still leaves a busy machine room before a 504.
      timeouts: { first_byte: '1s' },
      retries: { attempts: 1 },
      trusted_proxies: ['10.9.9.9'],
      sites: {
        pub: {
          hosts: ['example.com'],
          cookie_domain: { 'internal.local': 'example.com' },
          cookie_path: { '/app': '/' },
          routes: [{ path: '/', clusters: ['c'] }],
        },
        kept: { hosts: ['kept.example.com'], preserve_host: true, routes: [{ path: '/', clusters: ['c'] }] },
        down: { hosts: ['down.example.com'], routes: [{ path: '/', clusters: ['dead'] }] },
      },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member.close();
  });

  type Echo = { method: string; url: string; headers: Record<string, string>; body: string };
  const echo = async (options: Parameters<typeof request>[1]) =>
    JSON.parse((await request(proxy.port, options)).body) as Echo;

  it('removes hop-by-hop headers, including those named in Connection', async () => {
    const seen = await echo({
      headers: {
        connection: 'keep-alive, x-hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'x-end': 'kept',
      },
    });
    assert.equal(seen.headers['x-hop'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers['keep-alive'], undefined);
    assert.equal(seen.headers['x-end'], 'kept');
    const reply = await request(proxy.port, { path: '/hop' });
    assert.equal(reply.headers['x-secret'], undefined);
    assert.equal(reply.body, 'hop');
  });

  it('sets X-Forwarded-* and ignores incoming ones from untrusted clients', async () => {
    const seen = await echo({
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil', 'x-forwarded-proto': 'https' },
    });
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-host'], 'example.com');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  });

  it('sends the member host by default and the client host with preserve_host', async () => {
    assert.equal((await echo({})).headers.host, `127.0.0.1:${member.port}`);
    assert.equal((await echo({ host: 'kept.example.com' })).headers.host, 'kept.example.com');
  });

  it('keeps a valid request id and replaces an invalid one', async () => {
    const reply = await request(proxy.port, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(reply.headers['x-request-id'], 'abc-123');
    assert.equal((JSON.parse(reply.body) as Echo).headers['x-request-id'], 'abc-123');
    const bad = await request(proxy.port, { headers: { 'x-request-id': 'has space' } });
    assert.notEqual(bad.headers['x-request-id'], 'has space');
    assert.match(String(bad.headers['x-request-id']), /^[a-z0-9]+-[a-z0-9]+$/);
  });

  it('rewrites Location, Content-Location and Refresh that point at the member', async () => {
    const reply = await request(proxy.port, { path: '/redirect' });
    assert.equal(reply.status, 302);
    assert.equal(reply.headers.location, 'http://example.com/next?a=1');
    assert.equal(reply.headers['content-location'], 'http://example.com/here');
    assert.equal(reply.headers.refresh, '3; url=http://example.com/later');
  });

  it('rewrites Set-Cookie domain and path', async () => {
    const reply = await request(proxy.port, { path: '/cookie' });
    assert.deepEqual(reply.headers['set-cookie'], ['a=1; Domain=example.com; Path=/x', 'b=2; Path=/other']);
  });

  it('handles HEAD, 204 and 304 without bodies', async () => {
    const head = await request(proxy.port, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await request(proxy.port, { path: '/nocontent' })).status, 204);
    const nm = await request(proxy.port, { path: '/notmodified' });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers.etag, '"x"');
  });

  it('forwards a chunked request body', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { port: proxy.port, host: '127.0.0.1', method: 'POST', headers: { host: 'example.com' }, agent: false },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.write('hello ');
      req.end('world');
    });
    const seen = JSON.parse(reply) as Echo;
    assert.equal(seen.body, 'hello world');
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
  });

  it('answers Expect: 100-continue and then forwards the body', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request({
        port: proxy.port,
        host: '127.0.0.1',
        method: 'PUT',
        headers: { host: 'example.com', expect: '100-continue', 'content-length': '4' },
        agent: false,
      });
      req.on('continue', () => req.end('data'));
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    const seen = JSON.parse(reply) as Echo;
    assert.equal(seen.body, 'data');
    assert.equal(seen.headers.expect, undefined);
  });

  it('answers 502 in JSON or HTML by Accept when the member refuses', async () => {
    const json = await request(proxy.port, { host: 'down.example.com', headers: { accept: 'application/json' } });
    assert.equal(json.status, 502);
    assert.match(String(json.headers['content-type']), /application\/json/);
    assert.equal((JSON.parse(json.body) as { status: number }).status, 502);
    const html = await request(proxy.port, { host: 'down.example.com', headers: { accept: 'text/html' } });
    assert.equal(html.status, 502);
    assert.match(html.body, /<h1>Bad Gateway<\/h1>/);
    assert.ok(!html.body.includes(String(refused)), 'the page must not name the member');
  });

  it('answers 504 when the member sends nothing within first_byte', async () => {
    const reply = await request(proxy.port, { path: '/slow' });
    assert.equal(reply.status, 504);
  });

  it('keeps connections to the member alive across requests', async () => {
    const before = member.connections;
    for (let i = 0; i < 5; i++) await request(proxy.port, {});
    assert.ok(
      member.connections - before <= 1,
      `opened ${member.connections - before} connections for 5 sequential requests`,
    );
  });

  it("closes the client connection when the member's body breaks off, with no last chunk", async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.write('GET /cut HTTP/1.1\r\nHost: example.com\r\n\r\n');
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 200 [\s\S]*transfer-encoding: chunked\r\n[\s\S]*the first half\r\n$/i);
    assert.doesNotMatch(text, /\r\n0\r\n\r\n$/, 'no last chunk: the client sees the body cut');
  });

  it('serves pipelined requests on one client connection in order', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      'GET /a HTTP/1.1\r\nHost: example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
    );
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    await once(socket, 'end');
    const urls = [...text.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(urls, ['/a', '/b']);
  });
});

// Node's server gives the response to a pipelined request no socket until the one before it is answered,
// and emits no 'close' on it when the client leaves first: the proxy must still log it and let it go.
describe('a pipelined request whose client leaves before its turn', () => {
  let member: TestMember;
  let proxy: TestProxy;
  let dir: string;
  const held: http.ServerResponse[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-pipelined-'));
    member = await startMember('m', (_req, res) => held.push(res));
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      access_log: { target: join(dir, 'access.log'), format: 'json' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    for (const res of held) res.end();
    await proxy?.handle.close(1000);
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is logged, and stops counting as in flight, once the client connection closes', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    // A chunked body sends the connection to Node's server (the lane takes only bodiless requests).
    socket.write(
      'POST /first HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
        'GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n',
    );
    await waitFor(() => member.received.length === 2, 5000, 'both requests at the member');
    socket.destroy();
    const entries = await accessEntries(join(dir, 'access.log'), 2);
    assert.deepEqual(entries.map((e) => e.path).sort(), ['/first', '/second']);
    assert.deepEqual(
      entries.map((e) => e.status),
      [499, 499],
      'neither was answered before the client left',
    );
    await waitFor(() => proxy.handle.stats().members[0]!.inFlight === 0, 5000, 'no request left in flight');
  });

  it('logs a request refused before routing (an unknown host), as HAProxy and nginx do', async () => {
    const reply = await request(proxy.port, { host: 'nobody.invalid', path: '/probe' });
    assert.equal(reply.status, 404);
    const entries = await accessEntries(join(dir, 'access.log'), 3);
    const entry = entries.find((e) => e.path === '/probe');
    assert.deepEqual(
      [entry?.status, entry?.host, entry?.site, entry?.member, entry?.bytes],
      [404, 'nobody.invalid', '-', undefined, 'Not Found\n'.length],
    );
    // An error page names a request id: the log line has the same, to find it by.
    const answer = await rawExchange(proxy.port, 'GET /page#part HTTP/1.1\r\nHost: example.com\r\n\r\n');
    const id = /^x-request-id: (\S+)$/im.exec(answer)?.[1];
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const logged = (await accessEntries(join(dir, 'access.log'), 4)).find((e) => e.path === '/page#part');
    assert.deepEqual([logged?.status, logged?.requestId], [400, id]);
  });
});
