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
    for (const host of ['internal.local', 'internal.local.', 'INTERNAL.Local.', 'internal.local.:80', 'internal.local:8080', 'internal.local.:']) {
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
