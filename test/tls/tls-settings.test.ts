// TLS as operators expect it (issue 17, item 4), on real sockets: the HTTP→HTTPS redirect on both
// request paths of the http listener, HSTS on HTTPS only, protocol and cipher settings, certificate
// files reloaded when they change, and session tickets that resume on another instance.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { initialState } from '../../src/control/desired-state.js';
import { freePort } from '../../src/ports.js';
import { startProxy } from '../../src/proxy/proxy.js';
import { FileStore } from '../../src/store/file.js';
import { CertificateTable } from '../../src/tls/certificates.js';
import { TICKET_KEY, TicketKeyRotation } from '../../src/tls/ticket-keys.js';
import { selfSigned } from '../support/certs.js';
import { startMember, type TestMember } from '../support/members.js';
import { requirePeer } from '../support/peers.js';
import { waitFor } from '../support/process.js';
import { loadObject, request, startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawExchange } from '../support/raw-http.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';

/** One GET over HTTPS; status, headers and body. */
function httpsGet(
  port: number,
  host: string,
  path = '/',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(
        { port, host: '127.0.0.1', path, servername: host, headers: { host }, rejectUnauthorized: false, agent: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      )
      .on('error', reject);
  });
}

/** A TLS handshake with these client options: the negotiated protocol and cipher, or the error. */
async function handshake(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ protocol: string | null; cipher: string; cn: string } | { error: string }> {
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
  socket.on('error', () => undefined);
  try {
    await once(socket, 'secureConnect');
    return {
      protocol: socket.getProtocol(),
      cipher: socket.getCipher().name,
      cn: String(socket.getPeerCertificate().subject.CN),
    };
  } catch (error) {
    return { error: (error as Error).message };
  } finally {
    socket.destroy();
  }
}

describe('redirect_https and hsts', () => {
  let dir: string;
  let member: TestMember;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let httpPort = 0;
  let httpsPort = 0;
  const table = new CertificateTable();
  let trustedConfig: Record<string, unknown>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-tls-settings-'));
    member = await startMember('m', (req, res) => {
      req.resume();
      // A member's own HSTS is replaced by the site's, not doubled.
      res.writeHead(200, { 'strict-transport-security': 'max-age=1', 'content-type': 'text/plain' });
      res.end(`${req.method} ${req.url}`);
    });
    httpsPort = await freePort();
    trustedConfig = {
      listen: { http: '127.0.0.1:0', https: `127.0.0.1:${httpsPort}` },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      sites: {
        shop: {
          hosts: ['shop.test'],
          tls: selfSigned(dir, 'shop', 'shop.test'),
          redirect_https: true,
          hsts: { max_age: '365d', include_subdomains: true },
          routes: [{ path: '/', clusters: ['c'] }],
        },
        plain: { hosts: ['plain.test'], routes: [{ path: '/', clusters: ['c'] }] },
      },
    };
    const loaded = loadObject(trustedConfig);
    proxy = await startProxy({
      config: loaded,
      state: initialState(loaded.config),
      logger: pino({ level: 'silent' }),
      certificates: table,
    });
    httpPort = proxy.addresses().http[0]!.port;
  });
  after(async () => {
    await proxy?.close(1000);
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers HTTP with a 308 to the same path and query on HTTPS, on the fast lane', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const reply = await request(httpPort, { host: 'Shop.Test:80', path: '/cart/items?id=7&x=%20y' });
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, `https://shop.test:${httpsPort}/cart/items?id=7&x=%20y`);
    // A site without the option is forwarded as before.
    assert.equal((await request(httpPort, { host: 'plain.test', path: '/a' })).body, 'GET /a');
  });

  it("answers the same on Node's server (a request with a body, HTTP/1.0) and to an upgrade", async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const post = await request(httpPort, { host: 'shop.test', method: 'POST', path: '/order?n=1', body: 'x=1' });
    assert.equal(post.status, 308);
    assert.equal(post.headers.location, `https://shop.test:${httpsPort}/order?n=1`);
    const old = await rawExchange(httpPort, 'GET /old?q=1 HTTP/1.0\r\nHost: shop.test\r\n\r\n');
    assert.match(old, /^HTTP\/1\.1 308 /);
    assert.match(old, new RegExp(`\r\nlocation: https://shop\\.test:${httpsPort}/old\\?q=1\r\n`, 'i'));
    const upgrade = await rawExchange(
      httpPort,
      'GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.match(upgrade, /^HTTP\/1\.1 308 /);
    assert.match(upgrade, new RegExp(`\r\nLocation: https://shop\\.test:${httpsPort}/ws\r\n`));
  });

  it('forwards rather than redirects what a trusted proxy says came over HTTPS', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    // 127.0.0.1 is not in trusted_proxies here: its X-Forwarded-Proto is not believed.
    const untrusted = await request(httpPort, {
      host: 'shop.test',
      path: '/a',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(untrusted.status, 308);
    const loaded = loadObject({ ...trustedConfig, trusted_proxies: ['127.0.0.1'] });
    proxy.apply(loaded, initialState(loaded.config));
    try {
      const trusted = await request(httpPort, {
        host: 'shop.test',
        path: '/a',
        headers: { 'x-forwarded-proto': 'https' },
      });
      assert.equal(trusted.status, 200);
      assert.equal(trusted.body, 'GET /a');
      assert.equal(
        (await request(httpPort, { host: 'shop.test', path: '/a', headers: { 'x-forwarded-proto': 'http' } })).status,
        308,
      );
    } finally {
      const back = loadObject(trustedConfig);
      proxy.apply(back, initialState(back.config));
    }
  });

  it('still answers ACME http-01 challenges over HTTP', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    table.addHttpChallenge('tok3n', 'tok3n.thumbprint');
    const reply = await request(httpPort, { host: 'shop.test', path: '/.well-known/acme-challenge/tok3n' });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'tok3n.thumbprint');
  });

  it('serves HTTPS without a redirect, with Strict-Transport-Security replacing the member’s', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const reply = await httpsGet(httpsPort, 'shop.test', '/cart?id=7');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'GET /cart?id=7');
    assert.equal(reply.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  });

  it('sends no HSTS over plain HTTP, and none for a site without it', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const plain = await request(httpPort, { host: 'plain.test' });
    assert.equal(
      plain.headers['strict-transport-security'],
      'max-age=1',
      'the member’s own header passes on a site without hsts',
    );
    const redirect = await request(httpPort, { host: 'shop.test' });
    assert.equal(redirect.headers['strict-transport-security'], undefined);
  });
});

describe('redirect_https and hsts in the config', () => {
  const base = { clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } } };
  it('takes a port for the Location, leaving out 443', async () => {
    const proxy = await startTestProxy({
      ...base,
      health: { enabled: false },
      sites: { s: { hosts: ['s.test'], redirect_https: 443, routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      assert.equal((await request(proxy.port, { host: 's.test', path: '/x' })).headers.location, 'https://s.test/x');
    } finally {
      await proxy.handle.close(100);
    }
  });

  it('refuses redirect_https: true without an https listener, and preload without its conditions', () => {
    assert.throws(
      () =>
        parseConfig(
          JSON.stringify({
            listen: { http: '127.0.0.1:80' },
            ...base,
            sites: { s: { hosts: ['s.test'], redirect_https: true, routes: [{ clusters: ['c'] }] } },
          }),
        ),
      /redirect_https: true needs an https listener/,
    );
    assert.throws(
      () =>
        parseConfig(
          JSON.stringify({
            listen: { http: '127.0.0.1:80' },
            ...base,
            sites: { s: { hosts: ['s.test'], hsts: { max_age: '30d', preload: true }, routes: [{ clusters: ['c'] }] } },
          }),
        ),
      /preload needs include_subdomains: true and a max_age of at least 365d/,
    );
  });
});

describe('tls settings', () => {
  let dir: string;
  let proxy: TestProxy | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-tls-settings-'));
  });
  after(async () => {
    await proxy?.handle.close(100);
    await rm(dir, { recursive: true, force: true });
  });

  async function start(tlsSettings: Record<string, unknown>): Promise<number> {
    await proxy?.handle.close(100);
    proxy = await startTestProxy({
      listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'default.test') },
      tls: tlsSettings,
      clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
      health: { enabled: false },
      sites: {
        shop: {
          hosts: ['shop.test'],
          tls: selfSigned(dir, 'shop', 'shop.test'),
          routes: [{ path: '/', clusters: ['c'] }],
        },
      },
    });
    return proxy.handle.addresses().https[0]!.port;
  }

  it('accepts TLS 1.2 by default, and refuses it with min_version TLSv1.3, for every certificate', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    let port = await start({});
    for (const servername of ['shop.test', 'other.test']) {
      const tls12 = await handshake(port, { servername, maxVersion: 'TLSv1.2' });
      assert.ok(
        'protocol' in tls12 && tls12.protocol === 'TLSv1.2',
        `TLS 1.2 by default (${servername}): ${JSON.stringify(tls12)}`,
      );
    }
    // TLS 1.1 is refused by default (OpenSSL 3 here refuses it on the client too; the server's
    // setting is what the TLS 1.3 case below shows).
    assert.ok(
      'error' in
        (await handshake(port, {
          servername: 'shop.test',
          minVersion: 'TLSv1.1',
          maxVersion: 'TLSv1.1',
          ciphers: 'DEFAULT@SECLEVEL=0',
        })),
    );
    port = await start({ min_version: 'TLSv1.3' });
    for (const servername of ['shop.test', 'other.test']) {
      assert.ok(
        'error' in (await handshake(port, { servername, maxVersion: 'TLSv1.2' })),
        `TLS 1.2 refused (${servername})`,
      );
      const tls13 = await handshake(port, { servername });
      assert.ok('protocol' in tls13 && tls13.protocol === 'TLSv1.3', JSON.stringify(tls13));
    }
  });

  it('offers only the ciphers configured', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const port = await start({ ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' });
    for (const servername of ['shop.test', 'other.test']) {
      assert.ok(
        'error' in
          (await handshake(port, { servername, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })),
        `another cipher refused (${servername})`,
      );
      const chosen = await handshake(port, {
        servername,
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
      });
      assert.ok('cipher' in chosen && chosen.cipher === 'ECDHE-RSA-AES256-GCM-SHA384', JSON.stringify(chosen));
    }
  });

  it('refuses values OpenSSL does not take, at check and reload', () => {
    const config = (settings: Record<string, unknown>) =>
      JSON.stringify({
        listen: { https: '127.0.0.1:443' },
        tls: settings,
        clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
        sites: { s: { hosts: ['s.test'], routes: [{ clusters: ['c'] }] } },
      });
    assert.throws(
      () => parseConfig(config({ ciphers: 'NO-SUCH-CIPHER' })),
      /tls\.ciphers.*OpenSSL refuses "NO-SUCH-CIPHER": .*no cipher match/s,
    );
    assert.throws(() => parseConfig(config({ ecdh_curve: 'P-999' })), /tls\.ecdh_curve.*OpenSSL refuses "P-999"/s);
    assert.throws(() => parseConfig(config({ min_version: 'SSLv3' })), /tls\.min_version/);
    assert.equal(
      parseConfig(config({ ciphers: 'TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES256-GCM-SHA384', ecdh_curve: 'X25519:P-256' }))
        .config.tls.min_version,
      'TLSv1.2',
    );
  });

  it('resumes sessions by ticket, and not with session_tickets: false', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    for (const [tickets, expected] of [
      [true, true],
      [false, false],
    ] as const) {
      const port = await start({ session_tickets: tickets });
      const first = tls.connect({ port, host: '127.0.0.1', servername: 'shop.test', rejectUnauthorized: false });
      const [session] = (await once(first, 'session')) as [Buffer];
      first.destroy();
      const again = tls.connect({
        port,
        host: '127.0.0.1',
        servername: 'shop.test',
        rejectUnauthorized: false,
        session,
      });
      await once(again, 'secureConnect');
      assert.equal(again.isSessionReused(), expected, `session_tickets: ${tickets}`);
      again.destroy();
    }
  });

  it('applies changed settings at a reload, to new connections', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const port = await start({});
    assert.ok('protocol' in (await handshake(port, { servername: 'shop.test', maxVersion: 'TLSv1.2' })));
    proxy!.reapply({ ...proxy!.raw, tls: { min_version: 'TLSv1.3' } });
    assert.ok('error' in (await handshake(port, { servername: 'shop.test', maxVersion: 'TLSv1.2' })));
    assert.equal(((await handshake(port, { servername: 'other.test' })) as { cn: string }).cn, 'default.test');
  });
});

describe('certificate files reloaded when they change', () => {
  let dir: string;
  let handle: Awaited<ReturnType<typeof startProxy>> | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-cert-reload-'));
  });
  after(async () => {
    await handle?.close(100);
    await rm(dir, { recursive: true, force: true });
  });

  /** The serial number of the certificate served for a name. */
  async function serial(port: number, servername: string): Promise<string> {
    const socket = tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const value = socket.getPeerCertificate().serialNumber;
    socket.destroy();
    return value;
  }

  it('serves a replaced site certificate and default certificate without a restart, and keeps the old one when the new pair is unusable', async (t) => {
    if (!requirePeer(t, 'openssl', 'openssl')) return;
    const site = selfSigned(dir, 'shop', 'shop.test');
    const fallback = selfSigned(dir, 'default', 'default.test');
    const logged: { msg: string; where?: string }[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          logged.push(JSON.parse(chunk.toString()));
          done();
        },
      }),
    );
    const loaded = loadObject({
      listen: { https: '127.0.0.1:0', tls: fallback },
      clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
      health: { enabled: false },
      sites: { shop: { hosts: ['shop.test'], tls: site, routes: [{ path: '/', clusters: ['c'] }] } },
    });
    handle = await startProxy({ config: loaded, state: initialState(loaded.config), logger });
    const port = handle.addresses().https[0]!.port;
    const before = { site: await serial(port, 'shop.test'), fallback: await serial(port, 'other.test') };
    // A connection open across the replacement stays up.
    const open = tls.connect({ port, host: '127.0.0.1', servername: 'shop.test', rejectUnauthorized: false });
    await once(open, 'secureConnect');

    // Renewed as certbot does (new files renamed over the old ones), and by copying over in place.
    const renewed = selfSigned(dir, 'shop-new', 'shop.test');
    await rename(renewed.key, site.key);
    await rename(renewed.cert, site.cert);
    const renewedDefault = selfSigned(dir, 'default-new', 'default.test');
    await copyFile(renewedDefault.cert, fallback.cert);
    await copyFile(renewedDefault.key, fallback.key);
    const after = await waitFor(
      'the renewed certificates',
      async () => {
        const now = { site: await serial(port, 'shop.test'), fallback: await serial(port, 'other.test') };
        return now.site !== before.site && now.fallback !== before.fallback ? now : undefined;
      },
      30_000,
      200,
    );
    assert.ok(!open.destroyed && open.writable, 'the connection open across the replacement is still up');
    open.destroy();

    // A key that does not match the certificate, a certificate that is not one: what is in force stays.
    const other = selfSigned(dir, 'other', 'shop.test');
    await copyFile(other.key, site.key);
    await writeFile(fallback.cert, 'not a certificate\n');
    const refused = (where: string) =>
      logged.some((l) => l.where === where && l.msg.startsWith('certificate files changed but cannot be used'));
    await waitFor(
      'both refusals logged',
      async () => (refused('sites.shop.tls') && refused('listen.tls') ? true : undefined),
      30_000,
      200,
    );
    assert.equal(await serial(port, 'shop.test'), after.site);
    assert.equal(await serial(port, 'other.test'), after.fallback);
    // Fixed: the new pair is taken.
    await copyFile(other.cert, site.cert);
    await waitFor(
      'the fixed pair',
      async () => ((await serial(port, 'shop.test')) !== after.site ? true : undefined),
      30_000,
      200,
    );
  });
});

const etcd = etcdBinary();

for (const storeType of ['file', 'etcd'] as const) {
  describe(
    `session resumption across instances (${storeType} store)`,
    { skip: storeType === 'etcd' ? etcd.skip : false },
    () => {
      const running: TestDayshift[] = [];
      let dir: string;
      let cluster: EtcdCluster | undefined;
      let store: Record<string, unknown>;

      before(async () => {
        dir = await mkdtemp(join(tmpdir(), 'dayshift-tickets-'));
        if (storeType === 'etcd') {
          cluster = await EtcdCluster.start(etcd.path!, 1);
          store = {
            store: { type: 'etcd', endpoints: cluster.endpoints, prefix: `/dayshift/tickets-${process.pid}/` },
          };
        } else {
          // Two instances on one machine sharing state_dir share its file store.
          store = { state_dir: join(dir, 'state') };
        }
      });
      after(async () => {
        for (const d of running) await d.stop();
        await cluster?.stop();
        await rm(dir, { recursive: true, force: true });
      });

      async function instance(name: string): Promise<number> {
        const d = await startTestDayshift({
          listen: { https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'default.test') },
          ...store,
          clusters: { c: { members: [{ url: 'http://127.0.0.1:1' }] } },
          health: { enabled: false },
          sites: {
            shop: {
              hosts: ['shop.test'],
              tls: selfSigned(dir, `shop-${name}`, 'shop.test'),
              routes: [{ path: '/', clusters: ['c'] }],
            },
          },
        });
        running.push(d);
        return d.dayshift.proxy!.addresses().https[0]!.port;
      }

      /** A handshake offering `session`: whether it was resumed, and (on a new session) the ticket the server gave. */
      async function connect(
        port: number,
        maxVersion: tls.SecureVersion,
        session?: Buffer,
      ): Promise<{ reused: boolean; session: Buffer | undefined }> {
        const socket = tls.connect({
          port,
          host: '127.0.0.1',
          servername: 'shop.test',
          rejectUnauthorized: false,
          maxVersion,
          ...(session ? { session } : {}),
        });
        const ticket = once(socket, 'session');
        await once(socket, 'secureConnect');
        const reused = socket.isSessionReused();
        // TLS 1.3 sends its tickets after the handshake.
        const [received] = reused ? [undefined] : ((await ticket) as [Buffer]);
        socket.destroy();
        return { reused, session: received };
      }

      it('resumes on instance B a session from instance A, over TLS 1.3 and 1.2', async (t) => {
        if (!requirePeer(t, 'openssl', 'openssl')) return;
        const a = await instance('a');
        const b = await instance('b');
        for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
          const first = await connect(a, version);
          assert.equal(first.reused, false);
          const again = await connect(b, version, first.session);
          assert.equal(again.reused, true, `a ${version} session from A resumes on B`);
        }
      });
    },
  );
}

describe('ticket key rotation', () => {
  let dir: string;
  const rotations: TicketKeyRotation[] = [];
  const stores: FileStore[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-ticket-rotation-'));
  });
  after(async () => {
    for (const r of rotations) r.close();
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces the shared key when it is due, and every instance takes the new one', async () => {
    const applied: Buffer[][] = [[], []];
    for (const i of [0, 1]) {
      // Two stores on one directory: two instances, each with its own view of the store.
      const store = await FileStore.open(join(dir, 'store'));
      stores.push(store);
      const rotation = new TicketKeyRotation({
        store,
        logger: pino({ level: 'silent' }),
        rotationMs: () => 1500,
        apply: (key) => applied[i]!.push(key),
      });
      rotations.push(rotation);
      await rotation.start();
    }
    const first = applied[0]![0]!;
    assert.equal(first.length, 48);
    assert.deepEqual(applied[1]![0], first, 'the second instance took the first one’s key');
    const stored = await stores[0]!.get<{ key: string }>(TICKET_KEY);
    assert.equal(stored?.value.key, first.toString('base64'));
    // Past the rotation, both are on one new key, which is the stored one.
    const next = await waitFor(
      'both instances on a new key',
      async () => {
        const [a, b] = [applied[0]!.at(-1)!, applied[1]!.at(-1)!];
        const now = await stores[1]!.get<{ key: string }>(TICKET_KEY);
        return !a.equals(first) && a.equals(b) && now?.value.key === a.toString('base64') ? a : undefined;
      },
      20_000,
      100,
    );
    assert.equal(next.length, 48);
  });
});
