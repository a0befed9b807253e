import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startMember, type TestMember } from '../support/members.js';
import { accessEntries, request, startTestProxy, type TestProxy } from '../support/proxy.js';

/** Sends bytes, half a second at most, and returns what came back (the proxy may keep the connection). */
async function exchange(port: number, bytes: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(bytes, 'latin1');
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 500))]);
  socket.destroy();
  return text;
}

/**
 * Every request head in a connection's bytes: a request line up to the first empty line. A body that
 * holds request text counts too, which can only make the framing checks stricter.
 */
function requestHeads(bytes: string): string[] {
  return [...bytes.matchAll(/[A-Z]+ [^ \r\n]+ HTTP\/1\.[01]\r\n[\s\S]*?\r\n\r\n/g)].map((m) => m[0]);
}

/** How many header lines of a head have this (lower-case) name. */
function lines(head: string, name: string): number {
  return head.split('\r\n').filter((line) => line.toLowerCase().startsWith(`${name}:`)).length;
}

// Pieces of request framing that smuggling attacks combine.
const framing = fc.constantFrom(
  'Content-Length: 5',
  'Content-Length: 0',
  'Content-Length: 5, 5',
  'Content-Length: +5',
  'Content-Length:  5 ',
  'Content-Length: 99999999999999999999',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: chunked, identity',
  'Transfer-Encoding: identity, chunked',
  'Transfer-Encoding: CHUNKED',
  'Transfer-Encoding:\tchunked',
  'Transfer-Encoding: x',
  'Transfer-Encoding : chunked',
  ' Transfer-Encoding: chunked',
  'X-Pad: a\rTransfer-Encoding: chunked',
  'X-Pad: a\nTransfer-Encoding: chunked',
  'Host: other.example.com',
  'Connection: Transfer-Encoding',
  'Expect: 100-continue',
);
const bodies = fc.constantFrom(
  '',
  'hello',
  '0\r\n\r\n',
  '5\r\nhello\r\n0\r\n\r\n',
  '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
  'ff\r\nx\r\n',
);
const lineEnds = fc.constantFrom('\r\n', '\n');

describe('request framing under random combinations', () => {
  let member: TestMember;
  let proxy: TestProxy;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-fuzz-'));
    member = await startMember('m');
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      access_log: { target: join(dir, 'access.log'), format: 'json' },
      timeouts: { first_byte: '2s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  // A client may pipeline a second request after a correctly framed body: that one is its own and goes
  // through. Smuggling is a request the member parses that the proxy never saw as a request, so every
  // request line at the member must match one in the proxy's access log.
  it('never lets a member parse a request the proxy did not see, nor conflicting framing, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT'),
        fc.array(framing, { maxLength: 3 }),
        bodies,
        lineEnds,
        async (method, headers, body, eol) => {
          const head = [`${method} / HTTP/1.1`, 'Host: example.com', ...headers].join(eol);
          await exchange(proxy.port, `${head}${eol}${eol}${body}`);
        },
      ),
      {
        numRuns: 120,
        // Always among the runs, whatever the seed: one request framed by each, for the checks below.
        examples: [
          ['POST', ['Content-Length: 5'], 'hello', '\r\n'],
          ['POST', ['Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n', '\r\n'],
        ],
      },
    );
    assert.equal((await request(proxy.port, {})).status, 200, 'the proxy still serves normal requests');
    await proxy.handle.close(1000);
    // Forwarded: sent to a member (requests refused in routing are logged too, with no member).
    const seen = (await accessEntries(join(dir, 'access.log'))).filter((e) => e.member !== undefined);
    const count = (list: { method: string; url?: string; path?: string }[], url: string) =>
      list.filter((e) => (e.url ?? e.path) === url).length;
    const atMember = count(member.received, '/smuggled');
    assert.ok(
      atMember <= count(seen, '/smuggled'),
      `the member parsed ${atMember} /smuggled requests the proxy did not forward as requests`,
    );
    // Framing is checked on the bytes the member received, not on what its parser made of them: node:http
    // refuses a request with both Content-Length and Transfer-Encoding before any handler sees it.
    const heads = member.rawByConnection().flatMap(requestHeads);
    assert.ok(
      heads.length >= member.received.length,
      `${heads.length} request heads in the member's bytes for ${member.received.length} requests it parsed`,
    );
    assert.ok(
      heads.some((h) => lines(h, 'content-length') === 1) && heads.some((h) => lines(h, 'transfer-encoding') === 1),
      'the member received requests framed by Content-Length and by chunked encoding',
    );
    for (const head of heads) {
      assert.ok(
        lines(head, 'content-length') === 0 || lines(head, 'transfer-encoding') === 0,
        `the member received both Content-Length and Transfer-Encoding:\n${head}`,
      );
      assert.ok(
        lines(head, 'content-length') <= 1 && lines(head, 'transfer-encoding') <= 1,
        `the member received a repeated framing header:\n${head}`,
      );
      assert.equal(lines(head, 'host'), 1, `the member received a head without exactly one Host:\n${head}`);
      assert.doesNotMatch(head, /^host:\s*other\.example\.com/im);
    }
  });
});
