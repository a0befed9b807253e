// ajp:// members through the whole built-in proxy, against two real Tomcats (jvmRoute t1, t2): forwarding,
// stickiness on the JSESSIONID route suffix through a drain, retries past a dead member, a wrong secret
// as a 502, CPing health checks and member metrics.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { request, startTestProxy, waitFor } from '../../support/proxy.js';
import { requireTomcat, startTomcat } from '../../support/tomcat.js';
import { pattern } from './requests.js';
import { freePort } from '../../../src/ports.js';

interface Echo {
  serverName: string;
  remoteAddr: string;
  sessionId: string | null;
  bodyBytes: number;
  bodySha256: string;
  contentLength: number;
  headers: Record<string, string[]>;
}

function sessionCookie(setCookie: string[] | undefined): string {
  const cookie = setCookie?.find((c) => c.startsWith('JSESSIONID='));
  assert.ok(cookie, 'a JSESSIONID cookie');
  return cookie.split(';')[0]!;
}

test('ajp:// members through the built-in proxy', async (t) => {
  if (!requireTomcat(t)) return;
  const [t1, t2] = await Promise.all([startTomcat({ jvmRoute: 't1' }), startTomcat({ jvmRoute: 't2' })]);
  const deadPort = await freePort();
  const ajp = (port: number): string => `ajp://127.0.0.1:${port}`;
  const proxy = await startTestProxy({
    clusters: {
      web: {
        members: [
          { url: ajp(t1.ajpPort), route: 't1', secret: t1.secret },
          { url: ajp(t2.ajpPort), route: 't2', secret: t2.secret },
        ],
      },
      misconfigured: { members: [{ url: ajp(t1.ajpPort), route: 'w1', secret: 'not-the-secret' }] },
      halfdead: {
        members: [
          { url: ajp(deadPort), route: 'd1', secret: 'x' },
          { url: ajp(t1.ajpPort), route: 't1', secret: t1.secret },
        ],
      },
    },
    // A generous CPing timeout: a live Tomcat on a loaded machine must not flap down mid-test.
    health: { interval: '200ms', timeout: '5s', rise: 1, fall: 1 },
    sites: {
      public: {
        hosts: ['example.com'],
        preserve_host: true,
        routes: [
          { path: '/', clusters: ['web'], balance: 'round-robin', sticky: { mode: 'route', cookie: 'JSESSIONID' } },
        ],
      },
      wrong: { hosts: ['wrong.test'], routes: [{ path: '/', clusters: ['misconfigured'] }] },
      halfdead: { hosts: ['halfdead.test'], routes: [{ path: '/', clusters: ['halfdead'] }] },
    },
  });
  t.after(async () => {
    await proxy.handle.close(1000);
    await Promise.all([t1.stop(), t2.stop()]);
  });
  const memberStats = (key: string) => proxy.handle.stats().members.find((m) => m.key === key)!;

  await t.test('a GET is forwarded over AJP with the client Host and address', async () => {
    const reply = await request(proxy.port, { path: '/echo.jsp?x=1' });
    assert.equal(reply.status, 200);
    const echo = JSON.parse(reply.body) as Echo;
    assert.equal(echo.serverName, 'example.com');
    assert.equal(echo.remoteAddr, '127.0.0.1');
  });

  await t.test(
    'new sessions are spread over both members; each sticks to its jvmRoute, also through a drain',
    async () => {
      const cookies = new Map<string, string>();
      for (let i = 0; i < 6 && cookies.size < 2; i++) {
        const reply = await request(proxy.port, { path: '/echo.jsp?session=1' });
        const cookie = sessionCookie(reply.headers['set-cookie'] as string[] | undefined);
        cookies.set(cookie.slice(cookie.lastIndexOf('.') + 1), cookie);
      }
      assert.deepEqual([...cookies.keys()].sort(), ['t1', 't2']);
      const hits = async (cookie: string): Promise<string> => {
        const reply = await request(proxy.port, { path: '/echo.jsp?session=1', headers: { cookie } });
        assert.equal(
          (JSON.parse(reply.body) as Echo).sessionId,
          cookie.slice('JSESSIONID='.length),
          'the same session, so the same member',
        );
        return String(reply.headers['x-session-hits']);
      };
      assert.equal(await hits(cookies.get('t1')!), '2');
      assert.equal(await hits(cookies.get('t2')!), '2');

      const state = structuredClone(proxy.state);
      state.members['web/t1'] = {
        ...state.members['web/t1']!,
        admin: 'draining',
        drainingSince: new Date().toISOString(),
      };
      proxy.reapply(undefined, state);
      assert.equal(await hits(cookies.get('t1')!), '3', 't1 keeps serving its own sessions while draining');
      for (let i = 0; i < 4; i++) {
        const reply = await request(proxy.port, { path: '/echo.jsp?session=1' });
        assert.match(
          sessionCookie(reply.headers['set-cookie'] as string[] | undefined),
          /\.t2$/,
          'new sessions go to t2 only',
        );
      }
      state.members['web/t1'] = { ...state.members['web/t1']!, admin: 'ready', drainingSince: undefined };
      proxy.reapply(undefined, state);
    },
  );

  await t.test('a 5 MiB POST and a chunked upload go through the proxy intact', async () => {
    const body = pattern(0, 5 * 1024 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    const posted = JSON.parse(
      (
        await request(proxy.port, {
          method: 'POST',
          path: '/echo.jsp',
          body,
          headers: { 'content-type': 'application/octet-stream' },
        })
      ).body,
    ) as Echo;
    assert.equal(posted.bodyBytes, body.length);
    assert.equal(posted.bodySha256, sha);
    const chunked = await new Promise<Echo>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port,
          path: '/echo.jsp',
          method: 'POST',
          agent: false,
          headers: { host: 'example.com', 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Echo));
        },
      );
      req.on('error', reject);
      for (let at = 0; at < body.length; at += 100_000) req.write(body.subarray(at, at + 100_000));
      req.end();
    });
    assert.equal(chunked.contentLength, -1);
    assert.equal(chunked.bodyBytes, body.length);
    assert.equal(chunked.bodySha256, sha);
  });

  await t.test(
    "a wrong secret gives the client a 502, not Tomcat's 403 page; other members are unaffected",
    async () => {
      const reply = await request(proxy.port, { host: 'wrong.test', path: '/echo.jsp' });
      assert.equal(reply.status, 502);
      assert.doesNotMatch(reply.body, /Tomcat/);
      assert.equal((await request(proxy.port, { path: '/index.html' })).status, 200);
      // Passive checks eject it like a member that is down, with the reason for the operator.
      for (let i = 0; i < 3; i++) await request(proxy.port, { host: 'wrong.test', path: '/echo.jsp' });
      assert.equal(memberStats('misconfigured/w1').health, 'down');
      assert.match(memberStats('misconfigured/w1').healthReason ?? '', /secret does not match/);
    },
  );

  await t.test('a dead AJP member: requests are retried on the live one, and CPing health marks it down', async () => {
    for (let i = 0; i < 4; i++)
      assert.equal((await request(proxy.port, { host: 'halfdead.test', path: '/index.html' })).status, 200);
    await waitFor(
      () => memberStats('halfdead/d1').health === 'down' && memberStats('halfdead/t1').health === 'up',
      10_000,
      'health checks by CPing',
    );
    assert.match(memberStats('halfdead/d1').healthReason ?? '', /ping failed: connect .* failed/);
  });

  await t.test('member metrics count AJP responses and latency', async () => {
    const before = memberStats('web/t2').responses[1];
    await request(proxy.port, { path: '/index.html', headers: { cookie: 'JSESSIONID=ABC.t2' } });
    const after = memberStats('web/t2');
    assert.equal(after.responses[1], before + 1);
    assert.ok(after.latencyBuckets.reduce((a, b) => a + b, 0) >= 1);
    assert.equal(after.health, 'up');
  });
});
