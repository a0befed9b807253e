import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSigned } from '../support/certs.js';
import { startMember, type TestMember } from '../support/members.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { requirePeer } from '../support/peers.js';

describe('https listener', () => {
  let dir: string;
  let member: TestMember;
  let proxy: TestProxy | undefined;
  let port = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-tls-'));
    member = await startMember('m', (req, res) => {
      req.resume();
      res.end(JSON.stringify({ proto: req.headers['x-forwarded-proto'] }));
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts the https proxy once (with openssl-made certificates); both tests use it. */
  async function start(): Promise<void> {
    if (proxy) return;
    const shop = selfSigned(dir, 'shop', 'shop.test');
    const fallback = selfSigned(dir, 'default', 'default.test');
    const wild = selfSigned(dir, 'wild', '*.apps.test');
    proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: fallback },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: {
        shop: { hosts: ['shop.test'], tls: shop, routes: [{ path: '/', clusters: ['c'] }] },
        apps: { hosts: ['*.apps.test'], tls: wild, routes: [{ path: '/', clusters: ['c'] }] },
      },
    });
    port = proxy.handle.addresses().https[0]!.port;
  }

  async function certificateFor(servername: string): Promise<string> {
    const socket = tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const cn = socket.getPeerCertificate().subject.CN;
    socket.destroy();
    return String(cn);
  }

  it('picks the site certificate by SNI, wildcard included, else the default', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    await start();
    assert.equal(await certificateFor('shop.test'), 'shop.test');
    assert.equal(await certificateFor('x.apps.test'), '*.apps.test');
    assert.equal(await certificateFor('other.test'), 'default.test');
  });

  it('forwards over TLS with X-Forwarded-Proto https', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    await start();
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            port,
            host: '127.0.0.1',
            servername: 'shop.test',
            headers: { host: 'shop.test' },
            rejectUnauthorized: false,
            agent: false,
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c));
            res.on('end', () => resolve(text));
          },
        )
        .on('error', reject);
    });
    assert.deepEqual(JSON.parse(body), { proto: 'https' });
  });
});

describe('start-up errors', () => {
  it('names the config key and file of an unreadable certificate', async () => {
    const { startTestProxy: start } = await import('../support/proxy.js');
    await assert.rejects(
      start({
        listen: { https: '127.0.0.1:0' },
        clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
        health: { enabled: false },
        sites: {
          s: {
            hosts: ['a.test'],
            tls: { cert: 'no/such.crt', key: 'no/such.key' },
            routes: [{ path: '/', clusters: ['c'] }],
          },
        },
      }),
      /sites\.s\.tls\.cert: cannot read .*no\/such\.crt: ENOENT/,
    );
  });

  it('names a member whose host does not resolve', async () => {
    const { startTestProxy: start } = await import('../support/proxy.js');
    await assert.rejects(
      start({
        clusters: { c: { members: [{ url: 'http://no-such-host.invalid:8080' }] } },
        health: { enabled: false },
        sites: { s: { hosts: ['a.test'], routes: [{ path: '/', clusters: ['c'] }] } },
      }),
      /clusters\.c\.members\[0\]: cannot resolve no-such-host\.invalid/,
    );
  });

  it('says which address is in use', async () => {
    const { startTestProxy: start } = await import('../support/proxy.js');
    const first = await start({
      clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['a.test'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      await assert.rejects(
        start({
          listen: { http: `127.0.0.1:${first.port}` },
          clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
          health: { enabled: false },
          sites: { s: { hosts: ['a.test'], routes: [{ path: '/', clusters: ['c'] }] } },
        }),
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: address in use`),
      );
    } finally {
      await first.handle.close(100);
    }
  });
});
