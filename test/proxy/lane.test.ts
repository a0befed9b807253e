// The fast lane of plain-HTTP listeners (src/proxy/lane.ts): what it answers itself, what it hands to
// Node's http server, and its connection lifecycle (pipelining, keep-alive, timeouts, half-close).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawExchange as exchange, statuses } from '../support/raw-http.js';

describe('the fast lane', () => {
  let member: TestMember;
  let proxy: TestProxy;

  before(async () => {
    member = await startMember('m');
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      timeouts: { client_keepalive: '1s', idle: '1s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member.close();
  });

  it('answers pipelined requests on one connection in order', async () => {
    const seen = member.received.length;
    const reply = await exchange(
      proxy.port,
      'GET /a HTTP/1.1\r\nHost: example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: example.com\r\n\r\nGET /c HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statuses(reply), [200, 200, 200]);
    assert.deepEqual(
      member.received.slice(seen).map((r) => r.url),
      ['/a', '/b', '/c'],
    );
    assert.match(reply, /connection: close\r\n/);
  });

  it("hands a connection to Node's server at a request with a body, which goes on serving it", async () => {
    const seen = member.received.length;
    const reply = await exchange(
      proxy.port,
      'GET /one HTTP/1.1\r\nHost: example.com\r\n\r\n' +
        'POST /two HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /three HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statuses(reply), [200, 200, 200]);
    const received = member.received.slice(seen);
    assert.deepEqual(
      received.map((r) => [r.method, r.url, r.bodyBytes]),
      [
        ['GET', '/one', 0],
        ['POST', '/two', 5],
        ['GET', '/three', 0],
      ],
    );
  });

  it('answers HEAD with the headers and no body', async () => {
    const reply = await exchange(proxy.port, 'HEAD / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    assert.deepEqual(statuses(reply), [200]);
    assert.match(reply, /content-length: \d+\r\n/i);
    assert.ok(reply.endsWith('\r\n\r\n'), 'bytes after the head of a HEAD answer');
  });

  it("gives HTTP/1.0 requests to Node's server", async () => {
    const reply = await exchange(proxy.port, 'GET /old HTTP/1.0\r\nHost: example.com\r\n\r\n');
    assert.deepEqual(statuses(reply), [200]);
    assert.equal(member.received.at(-1)!.url, '/old');
  });

  it('answers every request of a client that half-closes after sending them', async () => {
    const seen = member.received.length;
    const reply = await exchange(
      proxy.port,
      'GET /fin1 HTTP/1.1\r\nHost: example.com\r\n\r\nGET /fin2 HTTP/1.1\r\nHost: example.com\r\n\r\n',
      { end: true },
    );
    assert.deepEqual(statuses(reply), [200, 200]);
    assert.deepEqual(
      member.received.slice(seen).map((r) => r.url),
      ['/fin1', '/fin2'],
    );
  });

  it('keeps a connection for the next request, and closes it after client_keepalive', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    const answered = async (count: number) => {
      while (statuses(text).length < count) await once(socket, 'data');
    };
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.write('GET /first HTTP/1.1\r\nHost: example.com\r\n\r\n');
    await answered(1);
    // The connection is idle from the second answer on, which is after this write: a lower bound that
    // holds however late this test sees the answer on a busy machine.
    const idleAfter = Date.now();
    const closed = once(socket, 'close');
    socket.write('GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n');
    await answered(2);
    assert.deepEqual(statuses(text), [200, 200]);
    assert.match(text, /keep-alive: timeout=1\r\n/);
    // The lane's sweep closes it past the 1 s keep-alive (checked every half second).
    await Promise.race([
      closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('still open after 10 s')), 10_000).unref()),
    ]);
    assert.ok(Date.now() - idleAfter >= 1000, 'closed before the keep-alive time');
  });

  it('answers 408 to a head that does not arrive in time', async () => {
    const seen = member.received.length;
    const reply = await exchange(proxy.port, 'GET / HTTP/1.1\r\nHost: exam');
    assert.deepEqual(statuses(reply), [408]);
    assert.equal(member.received.length, seen);
  });
});

describe('the fast lane and a slow client', () => {
  /** Small enough that each answer arrives whole and goes out in one write, whatever the client reads. */
  const SIZE = 60 * 1024;
  /** 200 of them (12 MB) is more than the socket buffers hold: the last ones queue in the proxy. */
  const COUNT = 200;
  let member: TestMember;
  let proxy: TestProxy;

  before(async () => {
    const body = Buffer.alloc(SIZE, 'a');
    member = await startMember('big', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': SIZE });
      res.end(body);
    });
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      timeouts: { client_keepalive: '1s', idle: '20s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member.close();
  });

  it('starts the keep-alive wait when the answers have left, so a client reading slowly gets all of them', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.pause();
    socket.write('GET /chunk HTTP/1.1\r\nHost: example.com\r\n\r\n'.repeat(COUNT));
    // The client takes nothing for three keep-alive times, then reads everything.
    await new Promise((r) => setTimeout(r, 3000));
    let bytes = 0;
    let complete = 0;
    // Each answer is a head and SIZE bytes: counts the complete ones as they arrive.
    let head = '';
    let body = -1;
    const done = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        while (chunk.length > 0) {
          if (body < 0) {
            head += chunk.toString('latin1');
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return;
            chunk = Buffer.from(head.slice(end + 4), 'latin1');
            head = '';
            body = SIZE;
          }
          const take = Math.min(body, chunk.length);
          body -= take;
          chunk = chunk.subarray(take);
          if (body === 0) {
            body = -1;
            if (++complete === COUNT) resolve();
          }
        }
      });
      socket.on('close', () => resolve());
    });
    socket.resume();
    await done;
    socket.destroy();
    assert.equal(complete, COUNT, `${complete} answers of ${COUNT} arrived whole (${bytes} bytes): the tail was cut`);
  });
});
