// What a client cannot get past the front door, on both request paths: the fast lane (a GET without a
// body) and Node's http server (a request with a body). Raw bytes in, what the member received checked.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawExchange as raw, statuses } from '../support/raw-http.js';

/** One request with the given Host and extra header lines, on the lane (GET) or Node's path (POST with a body). */
function bytes(path: 'lane' | 'node', host: string, extra = '', target = '/'): string {
  return path === 'lane'
    ? `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`
    : `POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: 3\r\nConnection: close\r\n\r\nabc`;
}

const PATHS = ['lane', 'node'] as const;

describe('host spelling: one site per name, however it is written', () => {
  let internal: TestMember;
  let other: TestMember;
  let proxy: TestProxy;

  before(async () => {
    internal = await startMember('internal');
    other = await startMember('other');
    proxy = await startTestProxy({
      clusters: { internal: { members: [{ url: internal.url }] }, other: { members: [{ url: other.url }] } },
      health: { enabled: false },
      sites: {
        internal: { hosts: ['internal.local'], deny: ['127.0.0.0/8'], routes: [{ path: '/', clusters: ['internal'] }] },
        rest: { hosts: ['*'], routes: [{ path: '/', clusters: ['other'] }] },
      },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await internal.close();
    await other.close();
  });

  for (const path of PATHS) {
    for (const host of [
      'internal.local',
      'internal.local.',
      'INTERNAL.Local.',
      'internal.local.:80',
      'internal.local:8080',
      'internal.local.:',
    ]) {
      it(`refuses Host "${host}" by the internal site's deny (${path})`, async () => {
        const seen = other.received.length + internal.received.length;
        const reply = await raw(proxy.port, bytes(path, host));
        assert.deepEqual(statuses(reply), [403], reply.slice(0, 200));
        assert.equal(other.received.length + internal.received.length, seen, 'a member received the request');
      });
    }

    it(`refuses an absolute-form target naming the host with a trailing dot (${path})`, async () => {
      const seen = other.received.length;
      const reply = await raw(proxy.port, bytes(path, 'internal.local', '', 'http://internal.local./x'));
      assert.deepEqual(statuses(reply), [403], reply.slice(0, 200));
      assert.equal(other.received.length, seen);
    });

    for (const host of ['internal.local..', '.internal.local', '.', '[::1', '[::1]x', '::1', 'a:b:c']) {
      it(`answers 400 to the malformed Host "${host}" (${path})`, async () => {
        const seen = other.received.length;
        const reply = await raw(proxy.port, bytes(path, host));
        assert.deepEqual(statuses(reply), [400], reply.slice(0, 200));
        assert.equal(other.received.length, seen, 'the default site served it');
      });
    }

    it(`still serves other names, and bracketed IPv6 literals, on the default site (${path})`, async () => {
      for (const host of ['public.example', 'public.example.', '[::1]', '[::1]:8080']) {
        const reply = await raw(proxy.port, bytes(path, host));
        assert.deepEqual(statuses(reply), [200], `${host}: ${reply.slice(0, 200)}`);
      }
    });
  }
});

describe('Forwarded and X-Real-IP, like X-Forwarded-*', () => {
  let member: TestMember;
  const proxies: Record<string, TestProxy> = {};
  const spoof = 'Forwarded: for=6.6.6.6;proto=https\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n';

  before(async () => {
    member = await startMember('m');
    const base = {
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    };
    proxies.untrusted = await startTestProxy({ ...base, trusted_proxies: ['10.0.0.0/8'] });
    proxies.writing = await startTestProxy({
      ...base,
      trusted_proxies: ['10.0.0.0/8'],
      forward_headers: { forwarded: true, x_real_ip: true },
    });
    proxies.trusted = await startTestProxy({
      ...base,
      trusted_proxies: ['127.0.0.0/8'],
      forward_headers: { forwarded: true },
    });
  });
  after(async () => {
    for (const proxy of Object.values(proxies)) await proxy.handle.close(1000);
    await member.close();
  });

  /** The values of one header in the last request the member received, from its raw header lines. */
  async function received(proxy: TestProxy, path: 'lane' | 'node', name: string): Promise<string[]> {
    const seen = member.received.length;
    const reply = await raw(proxy.port, bytes(path, 'example.com', spoof));
    assert.deepEqual(statuses(reply), [200], reply.slice(0, 200));
    assert.equal(member.received.length, seen + 1);
    const rawHeaders = member.received.at(-1)!.rawHeaders;
    const values: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2)
      if (rawHeaders[i]!.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
    return values;
  }

  for (const path of PATHS) {
    it(`removes a client's Forwarded and X-Real-IP when it is not a trusted proxy (${path})`, async () => {
      assert.deepEqual(await received(proxies.untrusted!, path, 'forwarded'), []);
      assert.deepEqual(await received(proxies.untrusted!, path, 'x-real-ip'), []);
      assert.deepEqual(await received(proxies.untrusted!, path, 'x-forwarded-for'), ['127.0.0.1']);
    });

    it(`writes its own Forwarded and X-Real-IP instead when forward_headers asks (${path})`, async () => {
      assert.deepEqual(await received(proxies.writing!, path, 'forwarded'), [
        'for=127.0.0.1;proto=http;host="example.com"',
      ]);
      assert.deepEqual(await received(proxies.writing!, path, 'x-real-ip'), ['127.0.0.1']);
    });

    it(`keeps a trusted proxy's Forwarded and X-Real-IP, appending its own element (${path})`, async () => {
      assert.deepEqual(await received(proxies.trusted!, path, 'forwarded'), [
        'for=6.6.6.6;proto=https, for=127.0.0.1;proto=http;host="example.com"',
      ]);
      assert.deepEqual(await received(proxies.trusted!, path, 'x-real-ip'), ['6.6.6.6']);
    });
  }
});
