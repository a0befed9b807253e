import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { request, startTestProxy, type TestProxy } from '../support/proxy.js';

describe('site and route matching', () => {
  let members: Record<string, TestMember>;
  let proxy: TestProxy;

  before(async () => {
    members = {};
    for (const name of ['pub', 'api', 'wild', 'qa', 'any']) members[name] = await startMember(name);
    proxy = await startTestProxy({
      clusters: Object.fromEntries(Object.entries(members).map(([n, m]) => [n, { members: [{ url: m.url }] }])),
      health: { enabled: false },
      sites: {
        public: {
          hosts: ['example.com', 'www.example.com'],
          routes: [
            { path: '/', clusters: ['pub'] },
            { path: '/api', clusters: ['api'] },
          ],
        },
        wild: { hosts: ['*.apps.example.com'], routes: [{ path: '/', clusters: ['wild'] }] },
        qa: { hosts: ['qa.example.com'], allow: ['10.0.0.0/8'], routes: [{ path: '/', clusters: ['qa'] }] },
      },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    for (const m of Object.values(members)) await m.close();
  });

  it('routes by exact host and alias', async () => {
    assert.equal((await request(proxy.port, { host: 'example.com' })).body, 'pub 0');
    assert.equal((await request(proxy.port, { host: 'WWW.Example.com:8080' })).body, 'pub 0');
  });

  it('routes by the longest path prefix on segment boundaries', async () => {
    assert.equal((await request(proxy.port, { path: '/api/users' })).body, 'api 0');
    assert.equal((await request(proxy.port, { path: '/api' })).body, 'api 0');
    assert.equal((await request(proxy.port, { path: '/api?x=1' })).body, 'api 0');
    assert.equal((await request(proxy.port, { path: '/apiary' })).body, 'pub 0');
  });

  it('matches a wildcard host on one label only', async () => {
    assert.equal((await request(proxy.port, { host: 'shop.apps.example.com' })).body, 'wild 0');
    const deeper = await request(proxy.port, { host: 'a.shop.apps.example.com' });
    assert.equal(deeper.status, 404);
  });

  it('answers an unknown host with a plain 404 that names no member', async () => {
    const reply = await request(proxy.port, { host: 'unknown.test' });
    assert.equal(reply.status, 404);
    assert.equal(reply.body, 'Not Found\n');
    assert.equal(reply.headers['x-member'], undefined);
    for (const m of Object.values(members)) assert.ok(!reply.body.includes(String(m.port)));
  });

  it('answers 403 to a client outside allow and does not forward', async () => {
    const before = members.qa!.received.length;
    const reply = await request(proxy.port, { host: 'qa.example.com' });
    assert.equal(reply.status, 403);
    assert.equal(members.qa!.received.length, before);
  });

  it('takes every other host on a "*" site once one exists', async () => {
    const next = structuredClone(proxy.raw) as { sites: Record<string, unknown> };
    next.sites.fallback = { hosts: ['*'], routes: [{ path: '/', clusters: ['any'] }] };
    proxy.reapply(next);
    assert.equal((await request(proxy.port, { host: 'unknown.test' })).body, 'any 0');
    assert.equal((await request(proxy.port, { host: 'example.com' })).body, 'pub 0');
  });
});
