import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawExchange as raw, statuses } from '../support/raw-http.js';

/** The status of a reply's first response. */
function status(reply: string): number {
  return statuses(reply)[0] ?? 0;
}

describe('malformed and hostile requests', () => {
  let member: TestMember;
  let proxy: TestProxy;

  before(async () => {
    member = await startMember('m');
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      limits: { header_size: '8k', header_count: 20 },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member.close();
  });

  const cases: [string, string, number][] = [
    [
      'Content-Length with Transfer-Encoding (CL.TE)',
      'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
      400,
    ],
    [
      'two different Content-Length headers',
      'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
      400,
    ],
    [
      'an unknown Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n',
      400,
    ],
    [
      'Transfer-Encoding with a trailing obs-fold',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n',
      400,
    ],
    [
      'a space before the header colon',
      'GET / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding : chunked\r\n\r\n',
      400,
    ],
    ['a NUL byte in a header value', 'GET / HTTP/1.1\r\nHost: example.com\r\nX-Bad: a\x00b\r\n\r\n', 400],
    ['a control character in the request target', 'GET /a\x01b HTTP/1.1\r\nHost: example.com\r\n\r\n', 400],
    [
      'a bad chunk size',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      400,
    ],
    ['no Host header', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['a Host with spaces', 'GET / HTTP/1.1\r\nHost: example .com\r\n\r\n', 400],
    [
      'an absolute-form target for another host',
      'GET http://internal.admin/secret HTTP/1.1\r\nHost: example.com\r\n\r\n',
      400,
    ],
    [
      'an absolute-form target with another scheme',
      'GET ftp://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n',
      400,
    ],
    [
      'a header block over header_size',
      `GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`,
      431,
    ],
    [
      'more headers than header_count',
      `GET / HTTP/1.1\r\nHost: example.com\r\n${Array.from({ length: 25 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
      431,
    ],
  ];

  for (const [name, bytes, expected] of cases) {
    it(`answers ${expected} to ${name} and forwards nothing`, async () => {
      const before = member.raw().length;
      const seen = member.received.length;
      const reply = await raw(proxy.port, bytes);
      assert.equal(status(reply), expected, reply.slice(0, 200));
      assert.equal(member.received.length, seen, 'the member received a request');
      assert.equal(member.raw().length, before, 'bytes reached the member');
    });
  }

  it('accepts an absolute-form target for its own host and forwards it in origin form', async () => {
    const reply = await raw(
      proxy.port,
      'GET http://example.com/ok?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
    );
    assert.equal(status(reply), 200);
    assert.equal(member.received.at(-1)!.url, '/ok?x=1');
  });

  it('never lets a body smuggle a second request to the member', async () => {
    const seen = member.received.length;
    const reply = await raw(
      proxy.port,
      'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 44\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    );
    assert.equal(status(reply), 200);
    assert.equal(member.received.at(-1)!.bodyBytes, 44);
    assert.equal(member.received.length, seen + 1, 'the member parsed exactly one request');
    assert.ok(!member.received.some((r) => r.url.includes('smuggled')));
  });
});
