import assert from 'node:assert/strict';
import https from 'node:https';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { AccessLog } from '../../src/proxy/access-log.js';
import { selfSigned } from '../support/certs.js';
import { startMember } from '../support/members.js';
import { request, startTestProxy, waitFor } from '../support/proxy.js';
import { requirePeer } from '../support/peers.js';

describe('graceful close', () => {
  it('lets a request in flight finish, then refuses new connections', async () => {
    let release: (() => void) | undefined;
    const member = await startMember('m', (req, res) => {
      req.resume();
      release = () => res.end('finished');
    });
    const proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      const pending = request(proxy.port, {});
      await waitFor(() => release !== undefined, 5000, 'the request at the member');
      const closed = proxy.handle.close(10_000);
      await assert.rejects(request(proxy.port, {}), /ECONNREFUSED/);
      release!();
      assert.equal((await pending).body, 'finished');
      await closed;
    } finally {
      await member.close();
    }
  });
});

describe('https members', () => {
  it('forwards to an https:// member, checking its certificate unless tls_verify is false', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-member-tls-'));
    const pair = selfSigned(dir, 'member', 'localhost');
    const server = https.createServer(
      { cert: await readFile(pair.cert), key: await readFile(pair.key) },
      (req, res) => {
        req.resume();
        res.end('secure member');
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const proxy = await startTestProxy({
      clusters: { trusting: { members: [{ url, tls_verify: false }] }, strict: { members: [{ url }] } },
      health: { enabled: false },
      retries: { attempts: 1 },
      sites: {
        a: { hosts: ['a.test'], routes: [{ path: '/', clusters: ['trusting'] }] },
        b: { hosts: ['b.test'], routes: [{ path: '/', clusters: ['strict'] }] },
      },
    });
    try {
      assert.equal((await request(proxy.port, { host: 'a.test' })).body, 'secure member');
      assert.equal(
        (await request(proxy.port, { host: 'b.test' })).status,
        502,
        'a self-signed member certificate is refused by default',
      );
    } finally {
      await proxy.handle.close(1000);
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('access log formats', () => {
  it('writes Apache combined lines', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c));
    const log = new AccessLog(out, 'combined', false);
    const entry = {
      client: '10.1.2.3',
      method: 'GET',
      path: '/a?b="c"',
      httpVersion: '1.1',
      status: 200,
      bytes: 512,
      referer: undefined,
      userAgent: 'curl/8',
      host: 'example.com',
      site: 's',
      member: 'c/1',
      durationMs: 3,
      requestId: 'x',
    };
    log.write(entry, Date.UTC(2026, 10, 26, 9, 5, 7));
    await log.close();
    assert.equal(text, '10.1.2.3 - - [26/Nov/2026:09:05:07 +0000] "GET /a?b=\\"c\\" HTTP/1.1" 200 512 "-" "curl/8"\n');
  });
});
