// Hostile input on both request paths — the fast lane (plain listener) and Node's http server (the TLS
// listener, where every request goes to Node) — checked on the bytes a raw TCP member received, not only
// on the status the client got: nothing refused may reach a member, and what is accepted reaches it
// exactly as an ordinary request would.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSigned } from '../support/certs.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawExchange, startRawMember, statuses, type RawMember, type RawOptions } from '../support/raw-http.js';

const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: hostile-ws\r\n\r\n';
const SMUGGLED =
  'POST /api/internal HTTP/1.1\r\nHost: internal.example\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
const VALID = 'GET /ok HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: hostile-ok\r\n\r\n';
/** The same request alone on its connection (Connection is not forwarded: the member sees the same bytes). */
const VALID_ALONE = 'GET /ok HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: hostile-ok\r\nConnection: close\r\n\r\n';

/** Requests refused before anything reaches a member: [name, bytes, status]. */
const REFUSED: [string, string, number][] = [
  [
    'Content-Length with Transfer-Encoding',
    'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    400,
  ],
  [
    'two different Content-Length headers',
    'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    400,
  ],
  ['an obs-fold header line', 'GET / HTTP/1.1\r\nHost: example.com\r\nX-Folded: a\r\n b\r\n\r\n', 400],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: example.com\n\n', 400],
  ['a NUL byte in a header value', 'GET / HTTP/1.1\r\nHost: example.com\r\nX-Bad: a\x00b\r\n\r\n', 400],
  ['a control character in the request target', 'GET /a\x01b HTTP/1.1\r\nHost: example.com\r\n\r\n', 400],
  ['two Host headers', 'GET / HTTP/1.1\r\nHost: example.com\r\nHost: internal.example\r\n\r\n', 400],
  ['a # in the request target', 'GET /a#/../admin HTTP/1.1\r\nHost: example.com\r\n\r\n', 400],
  ['CONNECT', 'CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n', 405],
  // No FIN: the answer must come from the request line alone, well before the 30 s head timeout.
  ['an HTTP/0.9 request line', 'GET /\r\n', 400],
  // Node's parser takes 2.0 (and 0.9 spelled out); Dayshift speaks HTTP/1.x to clients only.
  ['HTTP/2.0 in the request line', 'GET / HTTP/2.0\r\nHost: example.com\r\n\r\n', 505],
  ['HTTP/3.0 in the request line', 'GET / HTTP/3.0\r\nHost: example.com\r\n\r\n', 505],
  ['HTTP/0.9 spelled out in the request line', 'GET / HTTP/0.9\r\nHost: example.com\r\n\r\n', 505],
  ['an upgrade over HTTP/2.0', UPGRADE.replace('HTTP/1.1', 'HTTP/2.0'), 505],
];

describe('hostile input, as a member receives it', () => {
  let dir: string;
  let member: RawMember;
  let proxy: TestProxy;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-hostile-'));
    member = await startRawMember();
    proxy = await startTestProxy({
      listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'example.com') },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      // A long head timeout: an answer within the exchange's 5 s comes from the check, not the timeout.
      timeouts: { idle: '30s' },
      sites: { s: { hosts: ['*'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const path of [
    { name: 'the fast lane (plain listener)', tls: false },
    { name: "Node's http server (TLS listener)", tls: true },
  ]) {
    describe(path.name, () => {
      /** Sends bytes; returns the reply and the bytes the member received meanwhile. */
      async function exchange(bytes: string, options: RawOptions = {}): Promise<{ reply: string; received: string }> {
        const port = path.tls ? proxy.handle.addresses().https[0]!.port : proxy.port;
        const before = member.bytes().length;
        const reply = await rawExchange(port, bytes, { ...options, tls: path.tls });
        return { reply, received: member.bytes().slice(before) };
      }

      for (const [name, bytes, status] of REFUSED) {
        it(`answers ${status} to ${name}, and the member receives nothing`, async () => {
          const { reply, received } = await exchange(bytes);
          assert.deepEqual(statuses(reply), [status], JSON.stringify(reply.slice(0, 200)));
          assert.match(reply, /connection: close\r\n/i);
          assert.equal(received, '');
        });
      }

      it('a member refusing an upgrade (403) does not open a tunnel: the next request never reaches it', async () => {
        // What the member receives for the upgrade request alone, to compare with.
        const reference = await exchange(UPGRADE);
        assert.deepEqual(statuses(reference.reply), [403]);
        assert.match(reference.received, /^GET \/ws HTTP\/1\.1\r\n/);
        // As the review sent it: the upgrade, then 0.2 s later a request with CL and TE and a spoofed address.
        const { reply, received } = await exchange(UPGRADE, { then: [SMUGGLED], gapMs: 200 });
        assert.deepEqual(statuses(reply), [403], JSON.stringify(reply));
        assert.match(reply, /connection: close\r\n/i);
        assert.equal(received, reference.received, 'the member received more than the upgrade request');
        assert.ok(!received.includes('6.6.6.6'));
      });

      it('answers a valid request before the malformed one after it in the same write', async () => {
        const reference = await exchange(VALID_ALONE);
        assert.deepEqual(statuses(reference.reply), [200]);
        const { reply, received } = await exchange(
          `${VALID}GET /bad HTTP/1.1\r\nHost: example.com\r\nX-Bad: a\x00b\r\n\r\n`,
        );
        assert.deepEqual(statuses(reply), [200, 400], JSON.stringify(reply));
        assert.equal(received, reference.received);
      });

      it('forwards a valid request followed by a CL.TE smuggling attempt exactly as the valid one alone', async () => {
        const reference = await exchange(VALID_ALONE);
        const { reply, received } = await exchange(VALID + REFUSED[0]![1]);
        assert.deepEqual(statuses(reply), [200, 400], JSON.stringify(reply));
        assert.equal(received, reference.received);
      });
    });
  }
});
