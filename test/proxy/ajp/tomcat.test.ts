// The AJP transport against real Tomcat 10: two instances (jvmRoute t1 and t2) with secrets, started once
// for this file. The last subtest kills t2 in the middle of requests.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { createAjpTransport, type AjpTransport, type AjpTransportOptions } from '../../../src/proxy/ajp/transport.js';
import { UpstreamError } from '../../../src/proxy/errors.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { healthCheckFor, probeMember } from '../../../src/balance/health.js';
import { importApacheFile } from '../../../src/drivers/apache/import.js';
import { configSchema } from '../../../src/config/schema.js';
import { requireTomcat, startTomcat, type Tomcat } from '../../support/tomcat.js';
import { generatedBody, plainClient, readAll, readJson, upstreamRequest } from './requests.js';
import { freePort } from '../../../src/ports.js';

interface Echo {
  method: string;
  uri: string;
  query: string | null;
  scheme: string;
  secure: boolean;
  serverName: string;
  serverPort: number;
  remoteAddr: string;
  remotePort: number;
  contentLength: number;
  bodyBytes: number;
  bodySha256: string;
  sessionId: string | null;
  requestedSessionId: string | null;
  headers: Record<string, string[]>;
  cookies: Record<string, string>;
  attributes: Record<string, string | null>;
}

const MiB = 1024 * 1024;

function transportFor(tomcat: Tomcat, options: AjpTransportOptions = {}): AjpTransport {
  return createAjpTransport(new URL(`ajp://127.0.0.1:${tomcat.ajpPort}`), { secret: tomcat.secret, ...options });
}

/** big.jsp writes 64 KiB blocks of a-z restarting at each block. */
function bigByte(position: number): number {
  return 97 + ((position % 65536) % 26);
}

test('AJP transport against real Tomcat 10', async (t) => {
  if (!requireTomcat(t)) return;
  const [t1, t2] = await Promise.all([startTomcat({ jvmRoute: 't1' }), startTomcat({ jvmRoute: 't2' })]);
  const transports: AjpTransport[] = [];
  const open = (tomcat: Tomcat, options?: AjpTransportOptions): AjpTransport => {
    const transport = transportFor(tomcat, options);
    transports.push(transport);
    return transport;
  };
  t.after(async () => {
    await Promise.all(transports.map((tr) => tr.close()));
    await Promise.all([t1.stop(), t2.stop()]);
  });
  const ajp1 = open(t1);
  const ajp2 = open(t2);

  await t.test(
    'GET: method, path, query, Host, client address and port, request headers and cookies reach the app',
    async () => {
      const res = await ajp1.request(
        upstreamRequest({
          path: '/echo.jsp?a=1&b=%20two',
          headers: [
            ['host', 'example.test:8443'],
            ['user-agent', 'dayshift-test'],
            ['x-trace', 'abc'],
            ['cookie', 'c1=v1; c2=v2'],
          ],
        }),
      );
      assert.equal(res.status, 200);
      assert.equal(res.statusMessage, 'OK', 'Tomcat sends "200"; the transport gives the reason phrase');
      assert.match(res.headers.find(([n]) => n === 'content-type')?.[1] ?? '', /^application\/json/);
      const echo = await readJson<Echo>(res);
      assert.equal(echo.method, 'GET');
      assert.equal(echo.uri, '/echo.jsp');
      assert.equal(echo.query, 'a=1&b=%20two');
      assert.equal(echo.serverName, 'example.test', 'Tomcat takes the server name from the Host header');
      assert.equal(echo.serverPort, 8443);
      assert.equal(echo.remoteAddr, plainClient.address);
      assert.equal(echo.remotePort, plainClient.port, 'AJP_REMOTE_PORT');
      assert.equal(echo.scheme, 'http');
      assert.deepEqual(echo.headers['user-agent'], ['dayshift-test']);
      assert.deepEqual(echo.headers['x-trace'], ['abc']);
      assert.deepEqual(echo.cookies, { c1: 'v1', c2: 'v2' });
    },
  );

  await t.test('response headers and Set-Cookie come back, repeated headers as separate entries', async () => {
    const res = await ajp1.request(
      upstreamRequest({ path: '/echo.jsp?setcookie=flavour=oat&header=X-Answer:42&session=1' }),
    );
    await readAll(res.body);
    const cookies = res.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v);
    assert.equal(cookies.length, 2, cookies.join(' | '));
    assert.ok(cookies.some((c) => c.startsWith('flavour=oat')));
    assert.ok(cookies.some((c) => c.startsWith('JSESSIONID=')));
    assert.deepEqual(
      res.headers.find(([n]) => n === 'x-answer'),
      ['x-answer', '42'],
    );
  });

  await t.test('HEAD, a missing page and an application status come through unchanged', async () => {
    const head = await ajp1.request(upstreamRequest({ method: 'HEAD', path: '/index.html' }));
    assert.equal(head.status, 200);
    assert.equal((await readAll(head.body)).length, 0);
    const missing = await ajp1.request(upstreamRequest({ path: '/no-such-page' }));
    assert.equal(missing.status, 404);
    assert.equal(missing.statusMessage, 'Not Found');
    await readAll(missing.body);
    const unavailable = await ajp1.request(upstreamRequest({ path: '/echo.jsp?status=503' }));
    assert.equal(unavailable.status, 503);
    await readAll(unavailable.body);
  });

  await t.test('a method without an AJP code goes as a stored method and reaches Tomcat by name', async () => {
    const res = await ajp1.request(upstreamRequest({ method: 'PATCH' }));
    // JSPs allow only GET, POST and HEAD: the 405 shows Tomcat saw PATCH, not some other method.
    assert.equal(res.status, 405);
    assert.match((await readAll(res.body)).toString(), /JSPs only permit GET, POST or HEAD/);
  });

  await t.test('an application 403 is a response, not mistaken for a refused secret', async () => {
    const res = await ajp1.request(upstreamRequest({ path: '/echo.jsp?status=403' }));
    assert.equal(res.status, 403);
    assert.equal((await readJson<Echo>(res)).method, 'GET');
  });

  await t.test('POST of 6 MiB with Content-Length, streamed, arrives intact', async () => {
    const size = 6 * MiB;
    const body = generatedBody(size);
    const res = await ajp1.request(
      upstreamRequest({
        method: 'POST',
        headers: [
          ['host', 'example.test'],
          ['content-type', 'application/octet-stream'],
        ],
        body: body.stream,
        contentLength: size,
      }),
    );
    const echo = await readJson<Echo>(res);
    assert.equal(echo.contentLength, size);
    assert.equal(echo.bodyBytes, size);
    assert.equal(echo.bodySha256, createHash('sha256').update(body.bytes()).digest('hex'));
  });

  await t.test('chunked upload of 3 MiB (unknown length) arrives intact', async () => {
    const size = 3 * MiB;
    const body = generatedBody(size, 10_000);
    const res = await ajp1.request(
      upstreamRequest({
        method: 'POST',
        headers: [
          ['host', 'example.test'],
          ['content-type', 'application/octet-stream'],
        ],
        body: body.stream,
      }),
    );
    const echo = await readJson<Echo>(res);
    assert.equal(echo.contentLength, -1);
    assert.equal(echo.bodyBytes, size);
    assert.equal(echo.bodySha256, createHash('sha256').update(body.bytes()).digest('hex'));
  });

  await t.test('a POST with an empty body of known length 0', async () => {
    const res = await ajp1.request(
      upstreamRequest({ method: 'POST', body: generatedBody(0).stream, contentLength: 0 }),
    );
    const echo = await readJson<Echo>(res);
    assert.equal(echo.bodyBytes, 0);
    assert.equal(echo.contentLength, 0);
  });

  await t.test('a 20 MiB download streams through intact', async () => {
    const size = 20 * MiB;
    const res = await ajp1.request(upstreamRequest({ path: `/big.jsp?size=${size}` }));
    assert.deepEqual(
      res.headers.find(([n]) => n === 'content-length'),
      ['content-length', String(size)],
    );
    const data = await readAll(res.body);
    assert.equal(data.length, size);
    for (const at of [0, 1, 8183, 8184, 65535, 65536, size - 1]) assert.equal(data[at], bigByte(at), `byte ${at}`);
  });

  await t.test('sessions: JSESSIONID carries the jvmRoute suffix and sticks on its own member only', async () => {
    for (const [tomcat, ajp] of [
      [t1, ajp1],
      [t2, ajp2],
    ] as const) {
      const first = await ajp.request(upstreamRequest({ path: '/echo.jsp?session=1' }));
      const echo = await readJson<Echo>(first);
      assert.match(echo.sessionId ?? '', new RegExp(`^[0-9A-F]+\\.${tomcat.jvmRoute}$`));
      const cookie = first.headers.find(([n, v]) => n === 'set-cookie' && v.startsWith('JSESSIONID='))?.[1];
      assert.equal(cookie?.split(';')[0], `JSESSIONID=${echo.sessionId}`);
      const again = await ajp.request(
        upstreamRequest({
          path: '/echo.jsp?session=1',
          headers: [
            ['host', 'example.test'],
            ['cookie', `JSESSIONID=${echo.sessionId}`],
          ],
        }),
      );
      assert.deepEqual(
        again.headers.find(([n]) => n === 'x-session-hits'),
        ['x-session-hits', '2'],
      );
      assert.equal((await readJson<Echo>(again)).sessionId, echo.sessionId);
    }
    // The session lives on t1 only: sent to t2, the same cookie starts over.
    const onT1 = await readJson<Echo>(await ajp1.request(upstreamRequest({ path: '/echo.jsp?session=1' })));
    const misrouted = await ajp2.request(
      upstreamRequest({
        path: '/echo.jsp?session=1',
        headers: [
          ['host', 'example.test'],
          ['cookie', `JSESSIONID=${onT1.sessionId}`],
        ],
      }),
    );
    assert.deepEqual(
      misrouted.headers.find(([n]) => n === 'x-session-hits'),
      ['x-session-hits', '1'],
    );
    assert.match((await readJson<Echo>(misrouted)).sessionId ?? '', /\.t2$/);
  });

  await t.test('a client over TLS: the app sees https, cipher, key size, session id and protocol', async () => {
    const res = await ajp1.request(
      upstreamRequest({
        path: '/echo.jsp?attrs=jakarta.servlet.request.cipher_suite,jakarta.servlet.request.key_size,jakarta.servlet.request.ssl_session_id,org.apache.tomcat.util.net.secure_protocol_version',
        client: {
          ...plainClient,
          secure: true,
          serverPort: 443,
          tls: { cipher: 'TLS_AES_256_GCM_SHA384', keySize: 256, sessionId: '0a0b0c', protocol: 'TLSv1.3' },
        },
      }),
    );
    const echo = await readJson<Echo>(res);
    assert.equal(echo.scheme, 'https');
    assert.equal(echo.secure, true);
    assert.deepEqual(echo.attributes, {
      'jakarta.servlet.request.cipher_suite': 'TLS_AES_256_GCM_SHA384',
      'jakarta.servlet.request.key_size': '256',
      'jakarta.servlet.request.ssl_session_id': '0a0b0c',
      'org.apache.tomcat.util.net.secure_protocol_version': 'TLSv1.3',
    });
  });

  await t.test('request attributes: an allowed name reaches the app, a disallowed one is a clear refusal', async () => {
    const allowed = open(t1, { attributes: () => [['x-tenant', 'blue']] });
    const echo = await readJson<Echo>(await allowed.request(upstreamRequest({ path: '/echo.jsp?attrs=x-tenant' })));
    assert.deepEqual(echo.attributes, { 'x-tenant': 'blue' });
    const refused = open(t1, { attributes: () => [['tenant', 'blue']] });
    await assert.rejects(
      refused.request(upstreamRequest()),
      (err: unknown) =>
        err instanceof UpstreamError && err.kind === 'protocol' && /allowedRequestAttributesPattern/.test(err.message),
    );
  });

  await t.test('a wrong secret is a clear error naming the secret, not a 403 passed to the client', async () => {
    const wrong = open(t1, { secret: 'not-the-secret' });
    await assert.rejects(wrong.request(upstreamRequest()), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'protocol');
      assert.equal(err.phase, 'before-response');
      assert.match(err.message, /secret does not match/);
      return true;
    });
    assert.equal(wrong.stats().open, 0, 'Tomcat closes the connection; it is not pooled');
    const missing = open(t1, { secret: undefined });
    await assert.rejects(missing.request(upstreamRequest()), /secret does not match/);
  });

  await t.test('connections are reused across requests, CPinged before reuse', async () => {
    const ajp = open(t1, { cpingAfterIdleMs: 0 });
    for (let i = 0; i < 5; i++)
      await readAll(
        (
          await ajp.request(
            upstreamRequest({
              method: i % 2 ? 'POST' : 'GET',
              body: i % 2 ? generatedBody(20_000).stream : null,
              contentLength: i % 2 ? 20_000 : undefined,
            }),
          )
        ).body,
      );
    const stats = ajp.stats();
    assert.equal(stats.opened, 1);
    assert.equal(stats.reused, 4);
    assert.equal(stats.cpings, 4);
    assert.equal(stats.cpingFailures, 0);
  });

  await t.test('concurrent requests use separate connections within the bound', async () => {
    const ajp = open(t1, { maxConnections: 3 });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ajp.request(upstreamRequest({ path: `/echo.jsp?n=${i}&sleep=20` })).then(readJson<Echo>),
      ),
    );
    assert.deepEqual(
      results.map((e) => e.query),
      Array.from({ length: 8 }, (_, i) => `n=${i}&sleep=20`),
    );
    assert.ok(ajp.stats().opened <= 3, `opened ${ajp.stats().opened}`);
  });

  await t.test('ping() is a CPing health check: up on Tomcat, refused where nothing listens', async () => {
    await ajp1.ping(2000);
    const nowhere = createAjpTransport(new URL(`ajp://127.0.0.1:${await freePort()}`));
    await assert.rejects(nowhere.ping(2000), (err: unknown) => err instanceof UpstreamError && err.phase === 'connect');
    await nowhere.close();
  });

  await t.test('Tomcat killed mid-request: clean UpstreamErrors before and during the response, no crash', async () => {
    const ajp = open(t2);
    // Settled into values right away: they reject while the kill is still being awaited.
    const waiting = ajp.request(upstreamRequest({ path: '/echo.jsp?sleep=60000' })).then(
      () => 'answered',
      (err: unknown) => err,
    );
    const streaming = await ajp.request(upstreamRequest({ path: `/big.jsp?size=${200 * MiB}&delay=20` }));
    await new Promise((resolve) => streaming.body.once('readable', resolve));
    const reading = readAll(streaming.body).then(
      () => 'read to the end',
      (err: unknown) => err,
    );
    await t2.kill();
    const beforeResponse = await waiting;
    assert.ok(
      beforeResponse instanceof UpstreamError &&
        beforeResponse.phase === 'before-response' &&
        beforeResponse.kind === 'network',
      String(beforeResponse),
    );
    const duringResponse = await reading;
    assert.ok(
      duringResponse instanceof UpstreamError && duringResponse.phase === 'during-response',
      String(duringResponse),
    );
    await assert.rejects(
      ajp.request(upstreamRequest()),
      (err: unknown) => err instanceof UpstreamError && err.phase === 'connect' && err.kind === 'refused',
    );
    await assert.rejects(ajp2.ping(1000), (err: unknown) => err instanceof UpstreamError);
    // t1 is unaffected.
    assert.equal((await ajp1.request(upstreamRequest({ path: '/index.html' }))).status, 200);
  });

  await t.test(
    'an imported httpd config checks its ajp members: the running Tomcat is up, the stopped one down (what the health gate probes)',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dayshift-import-tomcat-'));
      try {
        const conf = join(dir, 'httpd.conf');
        await writeFile(
          conf,
          [
            '<VirtualHost 127.0.0.1:80>',
            '  ServerName example.com',
            '  ProxyPass / balancer://web-prod/',
            '  <Proxy balancer://web-prod>',
            `    BalancerMember ajp://127.0.0.1:${t1.ajpPort} secret=${t1.secret}`,
            `    BalancerMember ajp://127.0.0.1:${t2.ajpPort} secret=${t2.secret}`,
            '  </Proxy>',
            '</VirtualHost>',
            '',
          ].join('\n'),
        );
        const config = configSchema.parse(importApacheFile(conf).config);
        const [cluster, { members }] = Object.entries(config.clusters)[0]!;
        const probed = await Promise.all(members.map((m, i) => probeMember(m, healthCheckFor(config, cluster, i))));
        assert.equal(probed[0], undefined, 'the running Tomcat is up');
        assert.match(probed[1] ?? 'up', /ping failed/, 'the stopped Tomcat is down');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
