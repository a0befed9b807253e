// The AJP transport against a scripted fake container: the exchanges real Tomcat will not produce on
// demand (garbage, truncation, oversized packets, stalls) and the exact bytes the transport sends.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { createAjpTransport, type AjpTransportOptions } from '../../../src/proxy/ajp/transport.js';
import { UpstreamError } from '../../../src/proxy/errors.js';
import {
  CPONG,
  decodeForwardRequest,
  endResponse,
  fakeContainer,
  getBodyChunk,
  sendBodyChunk,
  sendHeaders,
  type FakeConnection,
} from './container.js';
import { eventually, generatedBody, readAll, upstreamRequest } from './requests.js';

const ok = (body = 'ok'): Buffer =>
  Buffer.concat([
    sendHeaders(200, '200', [['content-length', String(body.length)]]),
    sendBodyChunk(Buffer.from(body)),
    endResponse(true),
  ]);

async function withContainer(
  handler: (conn: FakeConnection) => Promise<void> | void,
  options: AjpTransportOptions,
  body: (
    t: ReturnType<typeof createAjpTransport>,
    container: Awaited<ReturnType<typeof fakeContainer>>,
  ) => Promise<void>,
): Promise<void> {
  const container = await fakeContainer(handler);
  const transport = createAjpTransport(new URL(`ajp://127.0.0.1:${container.port}`), options);
  try {
    await body(transport, container);
  } finally {
    await transport.close();
    await container.close();
  }
}

function isUpstreamError(phase: UpstreamError['phase'], kind: UpstreamError['kind'], message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    assert.equal(err.phase, phase, err.message);
    assert.equal(err.kind, kind, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

test('sends secret, route, query, remote port and TLS details as attributes, and the port 8009 default', async () => {
  assert.equal(createAjpTransport(new URL('ajp://web-1.prod-a.example.com')).port, 8009);
  let seen: ReturnType<typeof decodeForwardRequest> | undefined;
  await withContainer(
    async (conn) => {
      seen = decodeForwardRequest(await conn.next());
      conn.socket.write(ok());
    },
    { secret: 's3cr3t' },
    async (transport) => {
      const res = await transport.request(
        upstreamRequest({
          method: 'PATCH',
          path: '/a%20b/c?x=1&y=2',
          route: 'a1',
          headers: [
            ['host', 'example.test'],
            ['x-request-id', 'r1'],
          ],
          client: {
            address: '10.1.2.3',
            port: 5555,
            secure: true,
            serverName: 'example.test',
            serverPort: 443,
            tls: {
              cipher: 'TLS_AES_128_GCM_SHA256',
              protocol: 'TLSv1.3',
              sessionId: 'abcd',
              keySize: 128,
              clientCert: '-----BEGIN CERTIFICATE-----',
            },
          },
        }),
      );
      assert.equal((await readAll(res.body)).toString(), 'ok');
    },
  );
  assert.deepEqual(seen, {
    method: 'PATCH',
    protocol: 'HTTP/1.1',
    uri: '/a%20b/c',
    remoteAddr: '10.1.2.3',
    remoteHost: '10.1.2.3',
    serverName: 'example.test',
    serverPort: 443,
    isSsl: true,
    headers: [
      ['host', 'example.test'],
      ['x-request-id', 'r1'],
    ],
    secret: 's3cr3t',
    queryString: 'x=1&y=2',
    route: 'a1',
    sslCert: '-----BEGIN CERTIFICATE-----',
    sslCipher: 'TLS_AES_128_GCM_SHA256',
    sslSession: 'abcd',
    sslKeySize: 128,
    attributes: [
      ['AJP_REMOTE_PORT', '5555'],
      ['AJP_SSL_PROTOCOL', 'TLSv1.3'],
    ],
  });
});

test('a bodiless request answers Get Body Chunk with the empty packet', async () => {
  let answer: Buffer | undefined;
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(getBodyChunk(8186));
      answer = await conn.next();
      conn.socket.write(ok());
    },
    {},
    async (transport) => {
      const res = await transport.request(upstreamRequest());
      await readAll(res.body);
    },
  );
  assert.deepEqual(answer, Buffer.alloc(0), 'the empty data packet has a zero-length payload');
});

test('a body of known length: first chunk unsolicited, then one chunk per request of at most the asked size', async () => {
  const body = generatedBody(20_000);
  const received: Buffer[] = [];
  let forward: ReturnType<typeof decodeForwardRequest> | undefined;
  await withContainer(
    async (conn) => {
      forward = decodeForwardRequest(await conn.next());
      received.push(await conn.next());
      while (received.reduce((n, c) => n + c.length - 2, 0) < 20_000) {
        conn.socket.write(getBodyChunk(5000));
        received.push(await conn.next());
      }
      conn.socket.write(ok());
    },
    {},
    async (transport) => {
      const res = await transport.request(
        upstreamRequest({
          method: 'POST',
          body: body.stream,
          contentLength: 20_000,
          headers: [
            ['host', 'h'],
            ['content-length', '999'],
          ],
        }),
      );
      await readAll(res.body);
    },
  );
  assert.deepEqual(
    forward!.headers,
    [
      ['host', 'h'],
      ['content-length', '20000'],
    ],
    'Content-Length comes from contentLength',
  );
  assert.equal(received[0]!.readUInt16BE(0), 8186, 'the unsolicited first chunk is a full packet');
  for (const chunk of received.slice(1)) assert.ok(chunk.readUInt16BE(0) <= 5000);
  const data = Buffer.concat(received.map((c) => c.subarray(2)));
  assert.ok(data.equals(body.bytes()));
});

test('a body of unknown length (chunked upload) is sent only when asked, and ends with the empty packet', async () => {
  const body = generatedBody(30_000, 1000);
  const received: Buffer[] = [];
  let firstWasAsked = false;
  await withContainer(
    async (conn) => {
      const forward = decodeForwardRequest(await conn.next());
      assert.equal(
        forward.headers.find(([n]) => n === 'content-length'),
        undefined,
      );
      while (true) {
        conn.socket.write(getBodyChunk(8186));
        const chunk = await conn.next();
        firstWasAsked = true;
        if (chunk.length === 0) break;
        received.push(chunk.subarray(2));
      }
      conn.socket.write(ok());
    },
    {},
    async (transport) => {
      const res = await transport.request(upstreamRequest({ method: 'POST', body: body.stream }));
      await readAll(res.body);
    },
  );
  assert.ok(firstWasAsked);
  assert.ok(Buffer.concat(received).equals(body.bytes()));
});

test('request body backpressure: the client body is read only as far as the container asks', async () => {
  const body = generatedBody(10 * 1024 * 1024);
  let asked = 0;
  await withContainer(
    async (conn) => {
      await conn.next();
      await conn.next(); // the unsolicited first chunk
      for (; asked < 3; asked++) {
        conn.socket.write(getBodyChunk(8186));
        await conn.next();
      }
      conn.socket.write(ok());
    },
    {},
    async (transport) => {
      const res = await transport.request(
        upstreamRequest({ method: 'POST', body: body.stream, contentLength: 10 * 1024 * 1024 }),
      );
      await readAll(res.body);
      assert.ok(body.pulled() < 512 * 1024, `pulled ${body.pulled()} bytes of 10 MiB for 4 chunks`);
    },
  );
});

test('response backpressure: a reader that stops reading stops the socket; nothing is lost', async () => {
  const total = 24 * 1024 * 1024;
  let blocked = false;
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(sendHeaders(200, '200', []));
      const piece = Buffer.alloc(8184, 7);
      for (let sent = 0; sent < total; sent += piece.length) {
        const n = Math.min(piece.length, total - sent);
        if (!conn.socket.write(sendBodyChunk(piece.subarray(0, n)))) {
          blocked = true;
          await new Promise((resolve) => conn.socket.once('drain', resolve));
        }
      }
      conn.socket.write(endResponse(true));
    },
    {},
    async (transport) => {
      const res = await transport.request(upstreamRequest());
      await eventually(() => blocked, 'the container to be blocked by a full socket');
      assert.ok(res.body.readableLength < 2 * 1024 * 1024, `buffered ${res.body.readableLength} bytes`);
      assert.equal((await readAll(res.body)).length, total);
    },
  );
});

test('connections are reused, with a CPing before reuse of an idle connection', async () => {
  const perConnection: string[][] = [];
  await withContainer(
    async (conn) => {
      const log: string[] = [];
      perConnection.push(log);
      while (true) {
        const payload = await conn.next();
        if (payload[0] === 10) {
          log.push('cping');
          conn.socket.write(CPONG);
        } else {
          log.push('request');
          conn.socket.write(ok());
        }
      }
    },
    { cpingAfterIdleMs: 0 },
    async (transport) => {
      for (let i = 0; i < 3; i++) await readAll((await transport.request(upstreamRequest())).body);
      assert.deepEqual(perConnection, [['request', 'cping', 'request', 'cping', 'request']]);
      assert.equal(transport.stats().reused, 2);
    },
  );
});

test('no CPing when the idle connection was used more recently than cpingAfterIdleMs', async () => {
  let cpings = 0;
  await withContainer(
    async (conn) => {
      while (true) {
        const payload = await conn.next();
        if (payload[0] === 10) cpings++;
        conn.socket.write(payload[0] === 10 ? CPONG : ok());
      }
    },
    { cpingAfterIdleMs: 60_000 },
    async (transport) => {
      for (let i = 0; i < 3; i++) await readAll((await transport.request(upstreamRequest())).body);
      assert.equal(cpings, 0);
      assert.equal(transport.stats().opened, 1);
    },
  );
});

test('an idle connection that does not answer CPing is dropped and the request goes on a new one', async () => {
  let connections = 0;
  await withContainer(
    async (conn) => {
      const n = ++connections;
      await conn.next();
      conn.socket.write(ok());
      if (n === 1) return; // hangs: never answers the CPing
      while (true) {
        const payload = await conn.next();
        conn.socket.write(payload[0] === 10 ? CPONG : ok());
      }
    },
    { cpingTimeoutMs: 200, cpingAfterIdleMs: 0 },
    async (transport) => {
      await readAll((await transport.request(upstreamRequest())).body);
      const res = await transport.request(upstreamRequest());
      assert.equal(res.status, 200);
      await readAll(res.body);
      assert.equal(transport.stats().cpingFailures, 1);
      assert.equal(connections, 2);
    },
  );
});

test('End Response with reuse=false closes the connection instead of pooling it', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(Buffer.concat([sendHeaders(204, '204', []), endResponse(false)]));
    },
    {},
    async (transport, container) => {
      await readAll((await transport.request(upstreamRequest())).body);
      await readAll((await transport.request(upstreamRequest())).body);
      assert.equal(container.connections, 2);
      assert.equal(transport.stats().idle, 0);
    },
  );
});

test("Tomcat's numeric status message is replaced by the reason phrase; Set-Cookie stays repeated", async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(
        Buffer.concat([
          sendHeaders(404, '404', [
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
            ['X-Custom', 'v'],
          ]),
          endResponse(true),
        ]),
      );
    },
    {},
    async (transport) => {
      const res = await transport.request(upstreamRequest());
      assert.equal(res.status, 404);
      assert.equal(res.statusMessage, 'Not Found');
      assert.deepEqual(res.headers, [
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['x-custom', 'v'],
      ]);
      await readAll(res.body);
    },
  );
});

test('an oversized packet fails that exchange as a protocol error; a concurrent exchange is unaffected', async () => {
  let badClosed: () => void = () => undefined;
  const badIsClosed = new Promise<void>((resolve) => (badClosed = resolve));
  await withContainer(
    async (conn) => {
      const forward = decodeForwardRequest(await conn.next());
      if (forward.uri === '/bad') {
        conn.socket.once('close', badClosed);
        conn.socket.write(Buffer.from([0x41, 0x42, 0xff, 0x00, 4]));
      } else {
        // Answer only once the proxy has closed the bad connection: both exchanges were in flight together.
        await badIsClosed;
        conn.socket.write(ok('good'));
      }
    },
    {},
    async (transport) => {
      const [bad, good] = await Promise.allSettled([
        transport.request(upstreamRequest({ path: '/bad' })),
        transport.request(upstreamRequest({ path: '/good' })),
      ]);
      assert.equal(bad.status, 'rejected');
      isUpstreamError('before-response', 'protocol', /exceeds the packet size 8192/)(bad.reason);
      assert.equal(good.status, 'fulfilled');
      assert.equal((await readAll(good.value.body)).toString(), 'good');
      assert.equal(transport.stats().open, 1, 'the bad connection is closed, the good one pooled');
    },
  );
});

test('a 16 KiB packet size accepts 16 KiB packets and sends 16 KiB body chunks', async () => {
  let firstChunk = 0;
  await withContainer(
    async (conn) => {
      await conn.next();
      firstChunk = (await conn.next()).readUInt16BE(0);
      conn.socket.write(
        Buffer.concat([sendHeaders(200, '200', []), sendBodyChunk(Buffer.alloc(16_000, 1)), endResponse(true)]),
      );
    },
    { packetSize: 16384 },
    async (transport) => {
      const res = await transport.request(
        upstreamRequest({ method: 'POST', body: generatedBody(50_000).stream, contentLength: 50_000 }),
      );
      assert.equal((await readAll(res.body)).length, 16_000);
    },
  );
  assert.equal(firstChunk, 16384 - 6);
});

test('a truncated packet followed by close is a network error during the response', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(
        Buffer.concat([sendHeaders(200, '200', []), sendBodyChunk(Buffer.from('partial')).subarray(0, 6)]),
      );
      conn.socket.end();
    },
    {},
    async (transport) => {
      const res = await transport.request(upstreamRequest());
      await assert.rejects(readAll(res.body), isUpstreamError('during-response', 'network', /middle of a packet/));
    },
  );
});

test('garbage from the member always settles as a clean UpstreamError (or a response), never hangs', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 3000 }),
      fc.boolean(),
      async (garbage, validHeadersFirst) => {
        await withContainer(
          async (conn) => {
            await conn.next();
            if (validHeadersFirst) conn.socket.write(sendHeaders(200, '200', []));
            conn.socket.end(Buffer.from(garbage));
          },
          {},
          async (transport) => {
            try {
              const res = await transport.request(upstreamRequest());
              await readAll(res.body);
            } catch (err) {
              assert.ok(err instanceof UpstreamError, `not an UpstreamError: ${String(err)}`);
              assert.ok(['protocol', 'network'].includes(err.kind));
            }
          },
        );
      },
    ),
    { numRuns: 60, interruptAfterTimeLimit: 20_000 },
  );
});

test('connection refused is a connect-phase error', async () => {
  const container = await fakeContainer(() => undefined);
  const port = container.port;
  await container.close();
  const transport = createAjpTransport(new URL(`ajp://127.0.0.1:${port}`));
  await assert.rejects(transport.request(upstreamRequest()), isUpstreamError('connect', 'refused'));
  await assert.rejects(transport.ping(1000), isUpstreamError('connect', 'refused'));
  await transport.close();
});

test('no response headers within firstByteTimeoutMs is a timeout before the response', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
    },
    { firstByteTimeoutMs: 100 },
    async (transport) => {
      await assert.rejects(transport.request(upstreamRequest()), isUpstreamError('before-response', 'timeout'));
    },
  );
});

test('the pool is bounded: a request beyond maxConnections waits, and its abort is a connect-phase error', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await withContainer(
    async (conn) => {
      while (true) {
        const payload = await conn.next();
        await gate;
        conn.socket.write(payload[0] === 10 ? CPONG : ok());
      }
    },
    { maxConnections: 1 },
    async (transport, container) => {
      const first = transport.request(upstreamRequest());
      const aborter = new AbortController();
      const waiting = transport.request(upstreamRequest({ signal: aborter.signal }));
      const queued = transport.request(upstreamRequest());
      await eventually(() => transport.stats().waiting === 2, 'two requests waiting for the one connection');
      aborter.abort();
      await assert.rejects(waiting, isUpstreamError('connect', 'network', /aborted/));
      release();
      await readAll((await first).body);
      await readAll((await queued).body);
      assert.equal(container.connections, 1);
    },
  );
});

test('the queue is bounded in length and time: past maxQueue a request fails at once, past queueTimeoutMs a waiting one fails, and neither reaches the container', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let forwarded = 0;
  await withContainer(
    async (conn) => {
      while (true) {
        const payload = await conn.next();
        if (payload[0] !== 10) forwarded++;
        await gate;
        conn.socket.write(payload[0] === 10 ? CPONG : ok());
      }
    },
    { maxConnections: 1, maxQueue: 1, queueTimeoutMs: 1000 },
    async (transport, container) => {
      const first = transport.request(upstreamRequest());
      await eventually(() => forwarded === 1, 'the first request at the container');
      const started = Date.now();
      const waiting = transport.request(upstreamRequest());
      await eventually(() => transport.stats().waiting === 1, 'one request waiting for the one connection');
      await assert.rejects(transport.request(upstreamRequest()), isUpstreamError('queue', 'refused', /busy/));
      await assert.rejects(waiting, isUpstreamError('queue', 'timeout', /timeouts\.queue/));
      assert.ok(Date.now() - started >= 900, `the wait ended after ${Date.now() - started} ms`);
      assert.equal(transport.stats().waiting, 0);
      release();
      await readAll((await first).body);
      assert.equal(forwarded, 1, 'only the request that had the connection reached the container');
      assert.equal(container.connections, 1);
    },
  );
});

test('aborting during the response errors the body and closes the connection', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(sendHeaders(200, '200', []));
    },
    {},
    async (transport) => {
      const aborter = new AbortController();
      const res = await transport.request(upstreamRequest({ signal: aborter.signal }));
      const reading = readAll(res.body);
      aborter.abort();
      await assert.rejects(reading, isUpstreamError('during-response', 'network', /aborted/));
      assert.equal(transport.stats().open, 0);
    },
  );
});

test('a reader that destroys the body early closes the connection rather than pooling a half-read one', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(Buffer.concat([sendHeaders(200, '200', []), sendBodyChunk(Buffer.from('first'))]));
    },
    {},
    async (transport) => {
      const res = await transport.request(upstreamRequest());
      await new Promise((resolve) => res.body.once('data', resolve));
      res.body.destroy();
      await eventually(() => transport.stats().open === 0, 'the connection to close');
    },
  );
});

test('a request body that fails mid-upload fails the exchange and closes the connection', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      conn.socket.write(getBodyChunk(8186));
      await conn.next();
      conn.socket.write(getBodyChunk(8186));
    },
    {},
    async (transport) => {
      let sent = false;
      const body = new Readable({
        read() {
          if (!sent) {
            sent = true;
            this.push(Buffer.from('some'));
          } else this.destroy(new Error('client went away'));
        },
      });
      await assert.rejects(
        transport.request(upstreamRequest({ method: 'POST', body })),
        isUpstreamError('before-response', 'network', /client went away/),
      );
      assert.equal(transport.stats().open, 0);
    },
  );
});

test('headers too large for the packet are refused before sending; the connection stays usable', async () => {
  await withContainer(
    async (conn) => {
      while (true) {
        const payload = await conn.next();
        conn.socket.write(payload[0] === 10 ? CPONG : ok());
      }
    },
    {},
    async (transport) => {
      await readAll((await transport.request(upstreamRequest())).body);
      await assert.rejects(
        transport.request(upstreamRequest({ headers: [['cookie', 'x'.repeat(10_000)]] })),
        isUpstreamError('before-send', 'protocol', /packet_size/),
      );
      await readAll((await transport.request(upstreamRequest())).body);
      assert.equal(transport.stats().opened, 1);
    },
  );
});

test('ping() is CPing/CPong; a connector that never answers fails it within the timeout', async () => {
  await withContainer(
    async (conn) => {
      const payload = await conn.next();
      if (payload[0] === 10) conn.socket.write(CPONG);
    },
    {},
    async (transport) => {
      await transport.ping(1000);
    },
  );
  await withContainer(
    async (conn) => {
      await conn.next();
    },
    {},
    async (transport) => {
      await assert.rejects(transport.ping(200), isUpstreamError('before-send', 'timeout', /CPong/));
    },
  );
});

test('a body shorter than its Content-Length fails the exchange instead of ending it early', async () => {
  await withContainer(
    async (conn) => {
      await conn.next();
      await conn.next();
      conn.socket.write(getBodyChunk(8186));
      await conn.next();
    },
    {},
    async (transport) => {
      const res = transport.request(
        upstreamRequest({ method: 'POST', body: generatedBody(1000).stream, contentLength: 5000 }),
      );
      await assert.rejects(res, isUpstreamError('before-response', 'network', /ended after 1000 of its 5000 bytes/));
      assert.equal(transport.stats().open, 0);
    },
  );
});
