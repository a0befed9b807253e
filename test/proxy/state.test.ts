import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { initialState } from '../../src/control/desired-state.js';
import { routes, startMember, type MemberHandler, type TestMember } from '../support/members.js';
import { request, startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';

describe('maintenance, pause, drain notice and live state changes', () => {
  const releases: (() => void)[] = [];
  let a: TestMember;
  let b: TestMember;
  let proxy: TestProxy;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-state-'));
    await writeFile(join(dir, '503.html'), '<html><body><h1>Our own page</h1><p>{message}</p></body></html>');
    const page =
      (type: string): MemberHandler =>
      (_req, res) => {
        const body = '<html><body><main>Hello</main></body></html>';
        res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
    const handler = (name: string) =>
      routes(
        {
          // Answers only when the test says so: a request in flight across apply().
          '/hold': (_req, res) => {
            releases.push(() => res.end(`${name} held`));
          },
          '/gzip': (_req, res) => {
            res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip', 'content-length': '3' });
            res.end('abc');
          },
          '/chunked': (_req, res) => {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            res.write('<html><bo');
            res.end(`dy class="x">${name}</body></html>`);
          },
          '/json': page('application/json'),
        },
        page('text/html'),
      );
    a = await startMember('a', handler('a'));
    b = await startMember('b', handler('b'));
    proxy = await startTestProxy({
      clusters: { a: { members: [{ url: a.url, route: 'a1' }] }, b: { members: [{ url: b.url, route: 'b1' }] } },
      health: { enabled: false },
      drain: { deadline: '30m', notice: { enabled: true, banner: 'Updating: {minutes} minutes left' } },
      access_log: { target: join(dir, 'access.log'), format: 'json' },
      sites: {
        pub: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['a', 'b'], sticky: { mode: 'route' } }] },
        own: {
          hosts: ['own.example.com'],
          error_pages: { '503': join(dir, '503.html') },
          routes: [{ path: '/', clusters: ['a'] }],
        },
      },
    });
  });
  beforeEach(() => proxy.reapply(proxy.raw, initialState(proxy.loaded.config)));
  after(async () => {
    await proxy?.handle.close(1000);
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 with the maintenance message and Retry-After', async () => {
    const state = initialState(proxy.loaded.config);
    state.sites.pub = { maintenance: { message: 'Back at 14:00' } };
    proxy.reapply(proxy.raw, state);
    const reply = await request(proxy.port, { headers: { accept: 'text/html' } });
    assert.equal(reply.status, 503);
    assert.match(reply.body, /Back at 14:00/);
    assert.ok(reply.headers['retry-after']);
    const json = await request(proxy.port, { headers: { accept: 'application/json' } });
    assert.equal((JSON.parse(json.body) as { message: string }).message, 'Back at 14:00');
  });

  it("serves the site's own 503 page, with the message in it", async () => {
    const state = initialState(proxy.loaded.config);
    state.sites.own = { maintenance: { message: 'Back <soon>' } };
    proxy.reapply(proxy.raw, state);
    const reply = await request(proxy.port, { host: 'own.example.com', headers: { accept: 'text/html' } });
    assert.equal(reply.status, 503);
    assert.equal(reply.body, '<html><body><h1>Our own page</h1><p>Back &#60;soon&#62;</p></body></html>');
  });

  it('holds requests during a pause and serves them on resume', async () => {
    const state = initialState(proxy.loaded.config);
    state.sites.pub = { pause: { until: new Date(Date.now() + 60_000).toISOString(), then: 'serve' } };
    proxy.reapply(proxy.raw, state);
    const before = a.received.length + b.received.length;
    let answered = false;
    const pending = request(proxy.port, {}).then((r) => {
      answered = true;
      return r;
    });
    // Proving an absence: give the held request time it would need to be answered, then check it was not.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false);
    assert.equal(a.received.length + b.received.length, before, 'a held request reached a member');
    proxy.reapply(proxy.raw, initialState(proxy.loaded.config));
    assert.equal((await pending).status, 200);
  });

  it('answers 503 to held requests when a pause with then: reject runs out', async () => {
    const state = initialState(proxy.loaded.config);
    // The request must arrive while the pause lasts (else it is served): 1.5 s leaves room on a busy machine.
    const until = Date.now() + 1500;
    state.sites.pub = { pause: { until: new Date(until).toISOString(), then: 'reject' } };
    proxy.reapply(proxy.raw, state);
    const reply = await request(proxy.port, {});
    assert.equal(reply.status, 503);
    assert.ok(Date.now() >= until - 5, 'answered when the pause ran out, not before');
  });

  it('injects the drain banner into HTML from a draining cluster, with the header (minutes to its deadline) and a correct length', async () => {
    const state = initialState(proxy.loaded.config);
    state.clusters.b = {
      traffic: 'draining',
      weight: 1,
      drainingSince: new Date(Date.now() - 10 * 60_000).toISOString(),
    };
    proxy.reapply(proxy.raw, state);
    const reply = await request(proxy.port, { headers: { cookie: 'JSESSIONID=s.b1' } });
    assert.equal(reply.headers['dayshift-draining'], '20');
    assert.match(reply.body, /^<html><body><div role="status"[^>]*>Updating: 20 minutes left<\/div><main>Hello/);
    assert.equal(Number(reply.headers['content-length']), Buffer.byteLength(reply.body));
    const chunked = await request(proxy.port, { path: '/chunked', headers: { cookie: 'JSESSIONID=s.b1' } });
    assert.match(
      chunked.body,
      /^<html><body class="x"><div role="status"[^>]*>Updating: 20 minutes left<\/div>b<\/body>/,
    );
    const live = await request(proxy.port, { headers: { cookie: 'JSESSIONID=s.a1' } });
    assert.equal(live.headers['dayshift-draining'], undefined);
    assert.doesNotMatch(live.body, /Updating/);
    // A drain with a deadline of its own (given to the drain, not drain.deadline) counts down to that one.
    state.clusters.b.drainDeadline = {
      at: new Date(Date.now() + 4.5 * 60_000).toISOString(),
      who: 'token:admin',
      from: '127.0.0.1',
    };
    proxy.reapply(proxy.raw, state);
    const own = await request(proxy.port, { headers: { cookie: 'JSESSIONID=s.b1' } });
    assert.equal(own.headers['dayshift-draining'], '5');
    assert.match(own.body, /Updating: 5 minutes left/);
  });

  it('leaves compressed and non-HTML responses of a draining cluster untouched', async () => {
    const state = initialState(proxy.loaded.config);
    state.clusters.b = { traffic: 'draining', weight: 1 };
    proxy.reapply(proxy.raw, state);
    const gz = await request(proxy.port, { path: '/gzip', headers: { cookie: 'JSESSIONID=s.b1' } });
    assert.equal(gz.body, 'abc');
    const json = await request(proxy.port, { path: '/json', headers: { cookie: 'JSESSIONID=s.b1' } });
    assert.doesNotMatch(json.body, /Updating/);
    assert.equal(json.headers['dayshift-draining'], '30');
  });

  it('never fails a request in flight when state changes under it', async () => {
    const pending = Array.from({ length: 6 }, () => request(proxy.port, { path: '/hold' }));
    await waitFor(() => releases.length === 6, 5000, 'six requests at the members');
    const state = initialState(proxy.loaded.config);
    state.clusters.a = { traffic: 'out', weight: 1 };
    state.clusters.b = { traffic: 'out', weight: 1 };
    state.members['a/a1'] = { admin: 'disabled', weight: 1 };
    proxy.reapply(proxy.raw, state);
    const next = structuredClone(proxy.raw) as { sites: Record<string, unknown> };
    next.sites.other = { hosts: ['other.example.com'], routes: [{ path: '/', clusters: ['a'] }] };
    proxy.reapply(next, state);
    for (const release of releases.splice(0)) release();
    const replies = await Promise.all(pending);
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 200, 200, 200, 200],
    );
    assert.ok(replies.every((r) => /^[ab] held$/.test(r.body)));
    assert.equal((await request(proxy.port, {})).status, 503, 'new requests see the new state');
  });

  it('writes an access log entry per request, off the hot path', async () => {
    await request(proxy.port, { path: '/json', headers: { 'user-agent': 'test-agent', 'x-request-id': 'log-me' } });
    const file = join(dir, 'access.log');
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('log-me'), 5000, 'the log line');
    const line = (await readFile(file, 'utf8')).split('\n').find((l) => l.includes('log-me'))!;
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(entry.status, 200);
    assert.equal(entry.path, '/json');
    assert.equal(entry.userAgent, 'test-agent');
    assert.equal(entry.site, 'pub');
    assert.match(String(entry.member), /^[ab]\/[ab]1$/);
  });

  it('counts responses per site and member for stats()', async () => {
    const before = proxy.handle.stats();
    await request(proxy.port, { path: '/json' });
    const after = proxy.handle.stats();
    const sum = (s: typeof before) => s.members.reduce((n, m) => n + m.responses[1], 0);
    assert.equal(sum(after) - sum(before), 1);
    assert.equal(
      after.sites.find((s) => s.name === 'pub')!.responses[1] -
        before.sites.find((s) => s.name === 'pub')!.responses[1],
      1,
    );
    const m = after.members.find((x) => x.responses[1] > 0)!;
    assert.equal(m.latencyBuckets.length, 14);
    assert.equal(
      m.latencyBuckets.reduce((x, y) => x + y, 0),
      m.responses.reduce((x, y) => x + y, 0),
      'every response is in one bucket',
    );
  });
});
