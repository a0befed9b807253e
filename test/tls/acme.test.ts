// Certificates by ACME against Debian's pebble, a real RFC 8555 CA whose DNS (pebble-challtestsrv)
// points every name at 127.0.0.1: issue over http-01 and over tls-alpn-01, the full chain served,
// a site added by reload, renewal of a certificate due for it, a CA that is down at start, and two
// instances on etcd sharing one certificate that only one of them ordered.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, it, type TestContext } from 'node:test';
import { freePort } from '../../src/ports.js';
import type { StatusReport } from '../../src/observe/status-report.js';
import { selfSigned } from '../support/certs.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { startMember, type TestMember } from '../support/members.js';
import { Pebble } from '../support/pebble.js';
import { findExecutable, requirePeer } from '../support/peers.js';
import { launchChromium } from '../support/chromium.js';
import { waitFor } from '../support/process.js';

/** Issuing waits on the CA: generous, for a loaded machine. */
const ISSUE_MS = 60_000;

/** The certificate chain the https listener presents for `host`, verified against `ca` when given. */
function handshake(
  port: number,
  host: string,
  ca?: string,
): Promise<{ chain: X509Certificate[]; authorized: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: host, rejectUnauthorized: false, ...(ca ? { ca } : {}) },
      () => {
        const chain: X509Certificate[] = [];
        let peer = socket.getPeerCertificate(true);
        while (peer?.raw && !chain.some((c) => c.raw.equals(peer.raw))) {
          chain.push(new X509Certificate(peer.raw));
          peer = peer.issuerCertificate;
        }
        const error = socket.authorizationError ? String(socket.authorizationError) : undefined;
        resolve({ chain, authorized: socket.authorized, ...(error ? { error } : {}) });
        socket.end();
      },
    );
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
  });
}

/** Waits until the listener presents, for `host`, a certificate that verifies against pebble's root. */
async function waitIssued(pebble: Pebble, port: number, host: string): Promise<X509Certificate[]> {
  return waitFor(
    `a certificate for ${host} from pebble\n${pebble.log.slice(-2000)}`,
    async () => {
      const root = await pebble.root();
      const { chain, authorized } = await handshake(port, host, root);
      return authorized ? chain : undefined;
    },
    ISSUE_MS,
    250,
  );
}

function get(port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

interface Setup {
  pebble: Pebble;
  member: TestMember;
  httpPort: number;
  httpsPort: number;
  config: (extra?: Record<string, unknown>) => Record<string, unknown>;
  cleanup: () => Promise<void>;
}

/**
 * A member, pebble (validating on Dayshift's ports, or on a closed port for the challenge a test
 * rules out) and a config with the site `shop` on tls.acme.
 */
async function setup(
  t: TestContext,
  options: { challenge: 'http-01' | 'tls-alpn-01' | 'both'; startCa?: boolean; fallback?: string },
): Promise<Setup | undefined> {
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const closed = await freePort();
  const pebble = await Pebble.create(
    t,
    {
      httpPort: options.challenge === 'tls-alpn-01' ? closed : httpPort,
      tlsPort: options.challenge === 'http-01' ? closed : httpsPort,
    },
    options.startCa ?? true,
  );
  if (!pebble) return undefined;
  const member = await startMember('m1');
  const listen: Record<string, unknown> = {
    ...(options.challenge !== 'tls-alpn-01' ? { http: `127.0.0.1:${httpPort}` } : {}),
    https: `127.0.0.1:${httpsPort}`,
    ...(options.fallback ? { tls: selfSigned(options.fallback, 'fallback', 'fallback.test') } : {}),
  };
  return {
    pebble,
    member,
    httpPort,
    httpsPort,
    config: (extra = {}) => ({
      listen,
      acme: { directory: pebble.directory, email: 'ops@shop.test', ca_file: pebble.caFile },
      clusters: { a: { members: [{ url: member.url }], health: { enabled: false } } },
      sites: { shop: { hosts: ['shop.test', 'www.shop.test'], routes: [{ clusters: ['a'] }], tls: { acme: true } } },
      ...extra,
    }),
    cleanup: async () => {
      await member.close();
      await pebble.stop();
    },
  };
}

async function status(d: TestDayshift): Promise<StatusReport> {
  return (await d.api<StatusReport>('GET', '/api/status')).body;
}

describe('certificates by ACME (pebble)', () => {
  it('issues over http-01, serves the full chain, shows the expiry, certifies a site added by reload, keeps them across a restart, and drops a site removed', async (t) => {
    const s = await setup(t, { challenge: 'http-01' });
    if (!s) return;
    let d: TestDayshift | undefined;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-acme-'));
    try {
      d = await startTestDayshift(s.config(), dir);
      const chain = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
      // Pebble's root is all the client trusts: the handshake verified, so the intermediate was sent.
      assert.ok(chain.length >= 2, `expected leaf and intermediate, got ${chain.length} certificate(s)`);
      assert.match(chain[0]!.subjectAltName ?? '', /DNS:shop\.test/);
      assert.match(chain[0]!.subjectAltName ?? '', /DNS:www\.shop\.test/);
      assert.equal((await handshake(s.httpsPort, 'www.shop.test', await s.pebble.root())).authorized, true);

      const report = await status(d);
      const cert = report.sites.find((site) => site.name === 'shop')?.certificate;
      assert.equal(cert?.notAfter, new Date(chain[0]!.validTo).toISOString());
      const metrics = await (await fetch(`${d.adminUrl}/metrics`)).text();
      const expiry = Date.parse(chain[0]!.validTo) / 1000;
      assert.match(
        metrics,
        new RegExp(`dayshift_certificate_expiry_seconds\\{site="shop",host="www\\.shop\\.test"\\} ${expiry}\\b`),
      );

      // No restart: a site added to the config and reloaded gets its certificate too.
      const withBlog = s.config({
        sites: {
          ...(s.config().sites as object),
          blog: { hosts: ['blog.test'], routes: [{ clusters: ['a'] }], tls: { acme: true } },
        },
      });
      await d.writeConfig(withBlog);
      assert.equal((await d.api('POST', '/api/reload')).status, 200);
      const blog = await waitIssued(s.pebble, s.httpsPort, 'blog.test');
      assert.match(blog[0]!.subjectAltName ?? '', /DNS:blog\.test/);

      // After a restart the stored certificates are served as they are: no new order.
      const issued = s.pebble.log.match(/Issued certificate serial/g)?.length ?? 0;
      assert.equal(issued, 2, 'one certificate per site');
      await d.stop();
      d = await startTestDayshift(withBlog, dir);
      const again = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
      assert.equal(again[0]!.serialNumber, chain[0]!.serialNumber);
      assert.equal(
        s.pebble.log.match(/Issued certificate serial/g)?.length ?? 0,
        issued,
        'no certificate ordered after the restart',
      );

      // A site removed by reload is no longer served its certificate (there is no default one here).
      await d.writeConfig(s.config());
      assert.equal((await d.api('POST', '/api/reload')).status, 200);
      await assert.rejects(handshake(s.httpsPort, 'blog.test'));
      assert.equal((await handshake(s.httpsPort, 'shop.test', await s.pebble.root())).authorized, true);
    } finally {
      await d?.stop();
      await s.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('issues over tls-alpn-01 when only the https listener is there', async (t) => {
    const s = await setup(t, { challenge: 'tls-alpn-01' });
    if (!s) return;
    let d: TestDayshift | undefined;
    try {
      d = await startTestDayshift(s.config());
      const chain = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
      assert.match(chain[0]!.subjectAltName ?? '', /DNS:shop\.test/);
      // The challenge certificate is only for acme-tls/1: a normal client got the issued one above,
      // and the challenge is withdrawn once validated.
      assert.equal(await alpnProtocol(s.httpsPort, 'shop.test', ['acme-tls/1', 'http/1.1']), 'http/1.1');
    } finally {
      await d?.stop();
      await s.cleanup();
    }
  });

  it('renews a certificate that is due, and serves the renewed one', async (t) => {
    const s = await setup(t, { challenge: 'http-01' });
    const openssl = s && requirePeer(t, 'openssl', 'openssl');
    if (!s || !openssl) return;
    let d: TestDayshift | undefined;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-renew-'));
    try {
      d = await startTestDayshift(
        s.config({
          acme: {
            directory: s.pebble.directory,
            email: 'ops@shop.test',
            ca_file: s.pebble.caFile,
            renew_before: '30d',
          },
        }),
      );
      const first = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
      // A certificate for the same hosts that expires tomorrow (issued years ago): due for renewal.
      const due = backdated(openssl, dir, ['shop.test', 'www.shop.test']);
      await d.dayshift.store.put('acme/certificates/shop', {
        hosts: ['shop.test', 'www.shop.test'],
        chain: due.chain,
        key: due.key,
        orderedBy: 'test',
        orderedAt: new Date().toISOString(),
      });
      const renewed = await waitFor(
        'a renewed certificate',
        async () => {
          const chain = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
          return chain[0]!.serialNumber !== first[0]!.serialNumber ? chain : undefined;
        },
        ISSUE_MS,
        250,
      );
      assert.ok(
        Date.parse(renewed[0]!.validTo) > Date.now() + 30 * 86400_000,
        'the renewed certificate is not due again',
      );
      const stored = await d.dayshift.store.get<{ chain: string; orderedBy: string }>('acme/certificates/shop');
      assert.equal(new X509Certificate(stored!.value.chain).serialNumber, renewed[0]!.serialNumber);
    } finally {
      await d?.stop();
      await s.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves over HTTP and the fallback certificate while the CA is down, and gets the certificate once it is up', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-cadown-'));
    const s = await setup(t, { challenge: 'http-01', startCa: false, fallback: dir });
    if (!s) return;
    let d: TestDayshift | undefined;
    try {
      d = await startTestDayshift(s.config());
      const failed = await waitFor(
        'a failed ACME attempt in status',
        async () => {
          const cert = (await status(d!)).sites.find((site) => site.name === 'shop')?.certificate;
          return cert?.lastError && cert.retryAt ? cert : undefined;
        },
        ISSUE_MS,
      );
      assert.equal(failed.notAfter, undefined);
      assert.match(
        failed.lastError!,
        new RegExp(`cannot reach the ACME directory ${s.pebble.directory.replace(/[.]/g, '\\.')}: ECONNREFUSED`),
      );
      assert.equal((await get(s.httpPort, 'shop.test')).status, 200);
      const fallback = await handshake(s.httpsPort, 'shop.test');
      assert.match(fallback.chain[0]!.subject, /CN=fallback\.test/);

      // The dashboard says so on the site's card, then shows the expiry once the certificate is there.
      const chromium = findExecutable('chromium');
      const browser = chromium ? await launchChromium(chromium) : undefined;
      try {
        const page = await browser?.newPage();
        if (page) {
          page.setDefaultTimeout(30_000);
          await page.goto(`${d.adminUrl}/`);
          await page.getByLabel('Admin token').fill(d.token);
          await page.keyboard.press('Enter');
          await page.locator('article.site .certificate', { hasText: /No certificate yet: .+; next try/ }).waitFor();
        }

        await s.pebble.start();
        const chain = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
        const report = (await status(d)).sites.find((site) => site.name === 'shop')?.certificate;
        assert.equal(report?.notAfter, new Date(chain[0]!.validTo).toISOString());
        assert.equal(report.lastError, undefined);
        await page
          ?.locator('article.site .certificate', { hasText: /Certificate expires .+ \(\d+ days\), renews/ })
          .waitFor({ timeout: 30_000 });
      } finally {
        await browser?.close();
      }
    } finally {
      await d?.stop();
      await s.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  const etcd = etcdBinary();
  it('two instances on etcd share one certificate, ordered by one of them', { skip: etcd.skip }, async (t) => {
    // Pebble reaches only the first instance's http listener: if the second orders, the first answers
    // the challenge it took from the store.
    const s = await setup(t, { challenge: 'http-01' });
    if (!s) return;
    const cluster = await EtcdCluster.start(etcd.path!, 1);
    const started: TestDayshift[] = [];
    try {
      const store = { type: 'etcd', endpoints: cluster.endpoints, prefix: `/dayshift/acme-${process.pid}/` };
      const secondHttps = await freePort();
      const configs = [
        s.config({ store }),
        s.config({ store, listen: { http: '127.0.0.1:0', https: `127.0.0.1:${secondHttps}` } }),
      ];
      started.push(...(await Promise.all(configs.map((c) => startTestDayshift(c)))));
      const one = await waitIssued(s.pebble, s.httpsPort, 'shop.test');
      const two = await waitIssued(s.pebble, secondHttps, 'shop.test');
      assert.equal(two[0]!.serialNumber, one[0]!.serialNumber, 'both instances serve the same certificate');
      const issued = s.pebble.log.match(/Issued certificate serial/g)?.length ?? 0;
      assert.equal(issued, 1, `pebble issued ${issued} certificates:\n${s.pebble.log.slice(-3000)}`);
      const stored = await started[0]!.dayshift.store.get<{ orderedBy: string }>('acme/certificates/shop');
      assert.ok(stored?.value.orderedBy);
    } finally {
      for (const d of started) await d.stop();
      await cluster.stop();
      await s.cleanup();
    }
  });
});

/** The protocol the listener picks for these ALPN offers. */
function alpnProtocol(port: number, host: string, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: host, ALPNProtocols: protocols, rejectUnauthorized: false },
      () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

/** A self-signed certificate for hosts, valid from 2020 until tomorrow, made with `openssl ca`. */
function backdated(openssl: string, dir: string, hosts: string[]): { chain: string; key: string } {
  const run = (...args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const conf = join(dir, 'ca.cnf');
  const tomorrow = new Date(Date.now() + 86400_000).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  execFileSync(
    'sh',
    [
      '-c',
      `: > index.txt; echo 01 > serial; printf '%s\\n' '[ca]' 'default_ca=d' '[d]' 'database=index.txt' 'new_certs_dir=.' 'serial=serial' 'default_md=sha256' 'policy=p' 'copy_extensions=copy' '[p]' 'commonName=supplied' > ca.cnf`,
    ],
    { cwd: dir },
  );
  run(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'due.key',
    '-out',
    'due.csr',
    '-subj',
    `/CN=${hosts[0]}`,
    '-addext',
    `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
  );
  run(
    'ca',
    '-batch',
    '-config',
    conf,
    '-selfsign',
    '-keyfile',
    'due.key',
    '-in',
    'due.csr',
    '-out',
    'due.pem',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    tomorrow,
    '-notext',
  );
  return { chain: readFileSync(join(dir, 'due.pem'), 'utf8'), key: readFileSync(join(dir, 'due.key'), 'utf8') };
}
