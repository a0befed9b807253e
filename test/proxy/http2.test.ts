// HTTP/2 on the https listener (h2.ts): negotiated by ALPN beside HTTP/1.1, forwarded to HTTP/1.1
// members with everything HTTP/1.1 has, the defences, flow control, and a graceful close.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http2, { type ClientHttp2Session } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { initialState } from '../../src/control/desired-state.js';
import { selfSigned } from '../support/certs.js';
import { connectH2, h2Request } from '../support/h2.js';
import { routes, startMember, type TestMember } from '../support/members.js';
import { findPeer, requirePeer } from '../support/peers.js';
import { startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** What a member saw of a request, echoed back as JSON. */
function echo(name: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const body = JSON.stringify({
        member: name,
        method: req.method,
        url: req.url,
        version: req.httpVersion,
        host: req.headers['x-forwarded-host'],
        proto: req.headers['x-forwarded-proto'],
        chunked: req.headers['transfer-encoding'] === 'chunked',
        bytes,
      });
      // Chunked on purpose: transfer-encoding and connection must not reach an h2 client.
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' });
      res.end(body);
    });
  };
}

/** Ends the member's held answers (/hold), in order. */
const held: (() => void)[] = [];
/** Bytes a member has written of /big, and whether its last write found the socket full. */
const big = { written: 0, blocked: false };
/** Bytes a member has read of /upload so far; it reads only once `upload.read` is set. */
const upload: { received: number; start: (() => void) | undefined } = { received: 0, start: undefined };

function memberHandler(name: string) {
  return routes(
    {
      '/hold': (req, res) => {
        req.resume();
        held.push(() => res.end(`${name} held`));
      },
      '/big': (req, res) => {
        req.resume();
        const total = 64 * 1024 * 1024;
        const chunk = Buffer.alloc(64 * 1024, 'x');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
        const pump = () => {
          while (big.written < total) {
            big.written += chunk.length;
            if (!res.write(chunk)) {
              big.blocked = true;
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      },
      '/upload': (req, res) => {
        req.pause();
        upload.start = () => {
          req.on('data', (c: Buffer) => (upload.received += c.length));
          req.on('end', () => res.end(`${name} ${upload.received}`));
          req.resume();
        };
      },
      '/cut': (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('the first half', () => req.socket.destroy());
      },
      '/html': (req, res) => {
        req.resume();
        const page = '<html><body><main>Hello</main></body></html>';
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': page.length, 'x-member': name });
        res.end(page);
      },
    },
    echo(name),
  );
}

const openssl = findPeer('openssl', 'openssl');

describe('HTTP/2 on the https listener', { skip: openssl.skip }, () => {
  let dir: string;
  let a: TestMember;
  let b: TestMember;
  let proxy: TestProxy;
  let port: number;
  let session: ClientHttp2Session;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-h2-'));
    a = await startMember('a', memberHandler('a'));
    b = await startMember('b', memberHandler('b'));
    proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'shop.test') },
      clusters: { a: { members: [{ url: a.url }] }, b: { members: [{ url: b.url }] } },
      health: { enabled: false },
      http2: { max_concurrent_streams: 3, max_resets: 20 },
      limits: { header_size: 4096 },
      drain: { deadline: '30m', notice: { enabled: true, banner: 'Updating: {minutes} minutes left' } },
      access_log: { target: join(dir, 'access.log'), format: 'json' },
      sites: {
        shop: { hosts: ['shop.test'], routes: [{ path: '/', clusters: ['a', 'b'], sticky: { mode: 'cookie' } }] },
      },
    });
    port = proxy.handle.addresses().https[0]!.port;
  });
  beforeEach(async () => {
    proxy.reapply(proxy.raw, initialState(proxy.loaded.config));
    session = await connectH2(port);
  });
  after(async () => {
    session?.destroy();
    await proxy?.handle.close(1000);
    await a?.close();
    await b?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function alpn(offered: string[]): Promise<string | false | null> {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'shop.test',
      ALPNProtocols: offered,
      rejectUnauthorized: false,
    });
    await once(socket, 'secureConnect');
    const chosen = socket.alpnProtocol;
    socket.destroy();
    return chosen;
  }

  it('chooses h2 by ALPN, and HTTP/1.1 on the same port for clients that ask for it', async () => {
    assert.equal(await alpn(['h2', 'http/1.1']), 'h2');
    assert.equal(await alpn(['http/1.1']), 'http/1.1');
  });

  it('forwards to HTTP/1.1 members: X-Forwarded-Host from :authority, X-Forwarded-Proto, request id, access log', async () => {
    const reply = await h2Request(session, { path: '/x?q=1', headers: { 'x-request-id': 'h2-test-1' } });
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body);
    assert.deepEqual(
      { method: seen.method, url: seen.url, version: seen.version, host: seen.host, proto: seen.proto },
      { method: 'GET', url: '/x?q=1', version: '1.1', host: 'shop.test', proto: 'https' },
    );
    assert.equal(reply.headers['x-request-id'], 'h2-test-1');
    assert.equal(reply.headers['transfer-encoding'], undefined);
    assert.equal(reply.headers.connection, undefined);
    await waitFor(
      async () => (await readFile(join(dir, 'access.log'), 'utf8').catch(() => '')).includes('h2-test-1'),
      5000,
      'the access log line',
    );
    const line = (await readFile(join(dir, 'access.log'), 'utf8')).split('\n').find((l) => l.includes('h2-test-1'))!;
    assert.equal(JSON.parse(line).httpVersion, '2.0');
  });

  it('forwards a request body of unknown length, chunked to the member', async () => {
    const body = 'y'.repeat(100_000);
    const reply = await h2Request(session, { method: 'POST', path: '/post', body });
    const seen = JSON.parse(reply.body);
    assert.equal(seen.bytes, body.length);
    assert.equal(seen.chunked, true);
  });

  it('keeps a browser on its member with the sticky cookie', async () => {
    const first = await h2Request(session);
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    const member = JSON.parse(first.body).member;
    for (let i = 0; i < 6; i++) {
      const next = await h2Request(session, { headers: { cookie } });
      assert.equal(JSON.parse(next.body).member, member);
    }
  });

  it('answers maintenance, and shows the drain notice, as over HTTP/1.1', async () => {
    const state = initialState(proxy.loaded.config);
    state.sites.shop = { maintenance: { message: 'Back at noon' } };
    proxy.reapply(proxy.raw, state);
    const closed = await h2Request(session, { headers: { accept: 'application/json' } });
    assert.equal(closed.status, 503);
    assert.equal(closed.headers['retry-after'], '60');
    assert.equal(JSON.parse(closed.body).message, 'Back at noon');

    proxy.reapply(proxy.raw, initialState(proxy.loaded.config));
    const first = await h2Request(session, { path: '/html' });
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    const draining = initialState(proxy.loaded.config);
    draining.clusters[String(first.headers['x-member'])] = { traffic: 'draining', weight: 1 };
    proxy.reapply(proxy.raw, draining);
    // A session bound before the drain still reaches its member, and is told.
    const told = await h2Request(session, { path: '/html', headers: { cookie } });
    assert.equal(told.headers['dayshift-draining'], '30');
    assert.match(told.body, /Updating: 30 minutes left/);
    assert.equal(Number(told.headers['content-length']), Buffer.byteLength(told.body));
  });

  it('holds a request of a paused site and serves it when the pause ends', async () => {
    const state = initialState(proxy.loaded.config);
    state.sites.shop = { pause: { until: new Date(Date.now() + 60_000).toISOString(), then: 'serve' } };
    proxy.reapply(proxy.raw, state);
    const before = a.received.length + b.received.length;
    let answered = false;
    const pending = h2Request(session).then((r) => ((answered = true), r));
    // Proving an absence: give the held request time it would need to be answered, then check it was not.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false);
    assert.equal(a.received.length + b.received.length, before, 'a held request reached a member');
    proxy.reapply(proxy.raw, initialState(proxy.loaded.config));
    assert.equal((await pending).status, 200);
  });

  it('limits streams in progress on a connection to http2.max_concurrent_streams', async () => {
    assert.equal(session.remoteSettings.maxConcurrentStreams, 3);
    const before = held.length;
    const replies = Array.from({ length: 6 }, () => h2Request(session, { path: '/hold' }));
    await waitFor(() => held.length - before === 3, 5000, 'three requests at the members');
    for (let released = 0; released < 6; released++) {
      await waitFor(() => held.length > before + released, 5000, 'the next request at a member');
      assert.ok(held.length - before - released <= 3, 'never more than three at once');
      held[before + released]!();
    }
    for (const reply of await Promise.all(replies)) assert.equal(reply.status, 200);
  });

  it('refuses streams past the limit from a client that ignores it, and closes it after 100 refusals', async () => {
    const before = a.received.length + b.received.length;
    const raw = await RawH2.open(port);
    // 150 requests at once, where SETTINGS allow 3: the 4th on are refused as they come.
    raw.send(Buffer.concat(Array.from({ length: 150 }, (_, i) => frame(0x1, 0x5, 2 * i + 1, raw.requestBlock()))));
    await raw.closed;
    const refused = raw.frames.filter((f) => f.type === 0x3 && f.payload.readUInt32BE(0) === NGHTTP2_REFUSED_STREAM);
    // Node closes the connection (with no GOAWAY) at the 101st refusal, before the rest are read.
    assert.ok(refused.length > 90 && refused.length < 147, `${refused.length} streams refused, then closed`);
    assert.ok(a.received.length + b.received.length - before <= 10, 'few of the requests reached a member');
    assert.equal(await servedOnNewConnection(port), 200, 'others are still served');
  });

  it('closes a connection that floods malformed requests, and forwards none of them', async () => {
    const before = a.received.length + b.received.length;
    const raw = await RawH2.open(port);
    // An upper-case field name makes a request malformed (RFC 9113 §8.2.1).
    const invalid = Buffer.concat([
      raw.requestBlock(),
      Buffer.from([0x00, 3]),
      Buffer.from('X-A'),
      Buffer.from([1, 0x61]),
    ]);
    raw.send(Buffer.concat(Array.from({ length: 150 }, (_, i) => frame(0x1, 0x5, 2 * i + 1, invalid))));
    await raw.closed;
    assert.notEqual(raw.goaway(), undefined, 'a GOAWAY before the close');
    assert.equal(a.received.length + b.received.length, before, 'no malformed request reached a member');
    assert.equal(await servedOnNewConnection(port), 200, 'others are still served');
  });

  it('refuses a header list over limits.header_size on that stream only', async () => {
    const big = await h2Request(session, { headers: { 'x-big': 'z'.repeat(8000) } }).then(
      (reply) => reply.status,
      (error: Error) => error.message,
    );
    // 431 from Dayshift, or the stream reset by nghttp2 once the client has taken the limit.
    assert.match(String(big), /^431$|ENHANCE_YOUR_CALM/);
    assert.equal((await h2Request(session)).status, 200, 'the connection carries on');
  });

  it('closes a connection that resets more than http2.max_resets streams (rapid reset)', async () => {
    const before = a.received.length + b.received.length;
    // Within the limit: the connection carries on (a PING is answered, no GOAWAY).
    const calm = await RawH2.open(port);
    calm.send(Buffer.concat(Array.from({ length: 10 }, (_, i) => calm.resetRequest(2 * i + 1))));
    calm.send(frame(0x6, 0, 0, Buffer.alloc(8)));
    await calm.waitFor((f) => f.type === 0x6 && f.flags === 0x1, 'the PING acknowledged');
    assert.equal(calm.goaway(), undefined);
    calm.close();
    // The attack: HEADERS then RST_STREAM, over and over.
    const attack = await RawH2.open(port);
    attack.send(Buffer.concat(Array.from({ length: 40 }, (_, i) => attack.resetRequest(2 * i + 1))));
    await attack.closed;
    assert.equal(attack.goaway(), NGHTTP2_ENHANCE_YOUR_CALM);
    assert.ok(a.received.length + b.received.length - before <= 10, 'few of the reset requests reached a member');
    assert.equal(await servedOnNewConnection(port), 200, 'others are still served');
  });

  it('closes a connection that floods CONTINUATION frames', async () => {
    const raw = await RawH2.open(port);
    // HEADERS without END_HEADERS, then CONTINUATION frames of one small header each, without end: far
    // below the header limits, so only the defence against the flood closes it.
    raw.send(frame(0x1, 0x1, 1, raw.requestBlock()));
    const field = Buffer.concat([
      Buffer.from([0x00, 3]),
      Buffer.from('x-a'),
      Buffer.from([8]),
      Buffer.from('12345678'),
    ]);
    raw.send(Buffer.concat(Array.from({ length: 40 }, () => frame(0x9, 0, 1, field))));
    await raw.closed;
    assert.notEqual(raw.goaway(), undefined, 'a GOAWAY before the close');
    assert.equal(await servedOnNewConnection(port), 200, 'others are still served');
  });

  it("resets the stream when the member's body breaks off, so that it never looks complete", async () => {
    const stream = session.request({ ':path': '/cut', ':authority': 'shop.test' });
    let ended = false;
    stream.on('end', () => (ended = true));
    const closed = new Promise((resolve) => stream.on('close', resolve));
    stream.on('error', () => {});
    stream.resume();
    await closed;
    assert.equal(ended, false, 'no END_STREAM');
    assert.equal(stream.rstCode, NGHTTP2_INTERNAL_ERROR);
    assert.equal((await h2Request(session)).status, 200, 'the connection carries on');
  });

  it("makes a member's body wait for a client that does not read (flow control)", async () => {
    big.written = 0;
    big.blocked = false;
    const stream = session.request({ ':path': '/big', ':authority': 'shop.test' });
    stream.pause();
    await waitFor(() => big.blocked, 10_000, 'the member to find the proxy not reading');
    // A bounded look for growth that should not happen: the member stays blocked while nobody reads.
    const seen = big.written;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(big.written < 32 * 1024 * 1024, `the member wrote ${big.written} bytes with nobody reading`);
    assert.ok(big.written - seen <= 4 * 1024 * 1024, 'it did not carry on writing');
    let bytes = 0;
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.resume();
    await once(stream, 'end');
    assert.equal(bytes, 64 * 1024 * 1024);
    // The member connection it came on, paused for this client up to the end, reads its next response.
    for (let i = 0; i < 4; i++) assert.equal((await h2Request(session)).status, 200);
  });

  it('makes a client wait while the member does not read its body (flow control)', async () => {
    upload.received = 0;
    upload.start = undefined;
    const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'shop.test' });
    const chunk = Buffer.alloc(64 * 1024, 'u');
    let sent = 0;
    const total = 64 * 1024 * 1024;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!stream.write(chunk)) return resolve();
        }
        resolve();
      };
      pump();
    });
    await waitFor(() => upload.start !== undefined, 5000, 'the upload at a member');
    assert.ok(sent < total, 'the client was made to wait');
    const replied = new Promise<string>((resolve) => {
      let text = '';
      stream.on('data', (c: Buffer) => (text += c));
      stream.on('end', () => resolve(text));
    });
    upload.start!();
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!stream.write(chunk)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    if (stream.writableNeedDrain) stream.once('drain', pump);
    else pump();
    assert.match(await replied, new RegExp(` ${total}$`));
  });

  it('is understood by nghttp, a real HTTP/2 client', async (t) => {
    const nghttp = requirePeer(t, 'nghttp', 'nghttp2-client');
    if (!nghttp) return;
    const { stdout } = await promisify(execFile)(nghttp, [
      '-H',
      ':authority: shop.test',
      `https://127.0.0.1:${port}/via-nghttp`,
    ]);
    assert.equal(JSON.parse(stdout).url, '/via-nghttp');
  });
});

describe('HTTP/2 at a graceful close, and turned off', { skip: openssl.skip }, () => {
  let dir: string;
  let member: TestMember;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-h2-close-'));
    member = await startMember('m', memberHandler('m'));
  });
  after(async () => {
    await member?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function start(http2Config: Record<string, unknown> = {}): Promise<TestProxy> {
    return startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'shop.test') },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      http2: http2Config,
      sites: { shop: { hosts: ['shop.test'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  }

  it('finishes the streams in flight, sends GOAWAY, and takes no new stream', async () => {
    const proxy = await start();
    const session = await connectH2(proxy.handle.addresses().https[0]!.port);
    const before = held.length;
    const inFlight = h2Request(session, { path: '/hold' });
    await waitFor(() => held.length > before, 5000, 'the request at the member');
    const goaway = once(session, 'goaway');
    const closed = proxy.handle.close(10_000);
    await goaway;
    await assert.rejects(h2Request(session), 'no new stream after GOAWAY');
    held[before]!();
    const reply = await inFlight;
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'm held');
    await closed;
    session.destroy();
  });

  it('closes a connection with no stream open after timeouts.client_keepalive', async () => {
    const proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'shop.test') },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      timeouts: { client_keepalive: '1s' },
      sites: { shop: { hosts: ['shop.test'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    const session = await connectH2(proxy.handle.addresses().https[0]!.port);
    assert.equal((await h2Request(session)).status, 200);
    const [code] = await once(session, 'goaway');
    assert.equal(code, http2.constants.NGHTTP2_NO_ERROR);
    await once(session, 'close');
    await proxy.handle.close(1000);
  });

  it('offers only HTTP/1.1 with http2.enabled false', async () => {
    const proxy = await start({ enabled: false });
    const socket = tls.connect({
      port: proxy.handle.addresses().https[0]!.port,
      host: '127.0.0.1',
      servername: 'shop.test',
      ALPNProtocols: ['h2', 'http/1.1'],
      rejectUnauthorized: false,
    });
    await once(socket, 'secureConnect');
    assert.equal(socket.alpnProtocol, 'http/1.1');
    socket.destroy();
    await proxy.handle.close(1000);
  });
});

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A client that writes HTTP/2 frames by hand, as an attacker would, and reads the server's. */
class RawH2 {
  private received = Buffer.alloc(0);
  readonly frames: Frame[] = [];
  readonly closed: Promise<unknown>;

  private constructor(private readonly socket: tls.TLSSocket) {
    this.closed = once(socket, 'close');
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      this.received = Buffer.concat([this.received, data]);
      while (this.received.length >= 9 && this.received.length >= 9 + this.received.readUIntBE(0, 3)) {
        const length = this.received.readUIntBE(0, 3);
        this.frames.push({
          type: this.received[3]!,
          flags: this.received[4]!,
          stream: this.received.readUInt32BE(5) & 0x7fffffff,
          payload: this.received.subarray(9, 9 + length),
        });
        this.received = this.received.subarray(9 + length);
      }
    });
  }

  static async open(port: number): Promise<RawH2> {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'shop.test',
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
    });
    await once(socket, 'secureConnect');
    const raw = new RawH2(socket);
    raw.send(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, Buffer.alloc(0))]));
    return raw;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** HPACK for GET https://shop.test/ (static table entries, and a literal :authority). */
  requestBlock(): Buffer {
    const authority = Buffer.from('shop.test');
    return Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, authority.length]), authority]);
  }

  /** A whole GET on `stream`, then its cancellation. */
  resetRequest(stream: number): Buffer {
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(NGHTTP2_CANCEL);
    return Buffer.concat([frame(0x1, 0x5, stream, this.requestBlock()), frame(0x3, 0, stream, cancel)]);
  }

  /** The error code of the server's GOAWAY, if it sent one. */
  goaway(): number | undefined {
    const frame = this.frames.find((f) => f.type === 0x7);
    return frame?.payload.readUInt32BE(4);
  }

  waitFor(match: (frame: Frame) => boolean, what: string): Promise<void> {
    return waitFor(() => this.frames.some(match), 5000, what);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The status of a GET on a new h2 connection. */
async function servedOnNewConnection(port: number): Promise<number> {
  const session = await connectH2(port);
  try {
    return (await h2Request(session)).status;
  } finally {
    session.destroy();
  }
}

/** An HTTP/2 frame (RFC 9113 §4.1). */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}
