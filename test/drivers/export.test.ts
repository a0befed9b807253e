import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { importApacheFile } from '../../src/drivers/apache/import.js';
import { parseConfig } from '../../src/config/load.js';
import { configSchema, type DayshiftConfig } from '../../src/config/schema.js';
import { initialState } from '../../src/control/desired-state.js';
import { exportApache } from '../../src/drivers/apache/export.js';
import { createDriver } from '../../src/drivers/factory.js';
import { exportHaproxy } from '../../src/drivers/haproxy/export.js';
import { AppliedState } from '../support/applied-state.js';
import { waitUntilIdle } from '../support/driver-wait.js';
import { startBackend, startLoad, type Backend } from '../support/backends.js';
import { preamble } from '../support/httpd.js';
import { startExportedHaproxy, startExportedHttpd } from '../support/load-balancers.js';
import { requirePeer } from '../support/peers.js';
import { waitFor } from '../support/process.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const EXTRA_MODULES = ['ssl', 'proxy_hcheck'];

/** Configs that exercise every exported feature: the origin example, the imported shop, and odd corners. */
async function configs(dir: string): Promise<Record<string, DayshiftConfig>> {
  // A self-signed certificate, and the same as one PEM for HAProxy (which wants the key beside the cert).
  const cert = join(dir, 'site.crt');
  const key = join(dir, 'site.key');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=shop.example',
    '-days',
    '2',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  await writeFile(`${cert}.key`, await readFile(key));
  const shop = importApacheFile(join(root, 'test/fixtures/apache-shop/httpd.conf'), {
    serverRoot: join(root, 'test/fixtures/apache-shop'),
  }).config as {
    sites: Record<string, { tls?: { cert: string; key: string } }>;
  };
  shop.sites.public!.tls = { cert, key };
  const corners = parseConfig(`
listen: { http: [127.0.0.1:18080, 127.0.0.1:18081], https: 127.0.0.1:18443, tls: { cert: ${cert}, key: ${key} } }
clusters:
  blue: { members: [{ url: "http://127.0.0.1:9001" }, { url: "https://127.0.0.1:9443", tls_verify: false, weight: 300 }], traffic: draining }
  green: { members: [{ url: "http://127.0.0.1:9002", state: standby }, { url: "http://127.0.0.1:9003", weight: 0 }], traffic: out }
sites:
  app:
    hosts: [app.example, "*.app.example"]
    allow: [10.0.0.0/8]
    deny: [10.9.9.9]
    routes:
      - { path: /, clusters: [blue, green], sticky: { mode: cookie, max_age: 1h }, balance: p2c-ewma }
      - { path: /static/, clusters: [green], strip_prefix: true }
  fallback:
    hosts: ["*"]
    routes: [{ clusters: [blue] }]
`).config;
  return {
    origin: parseConfig(await readFile(join(root, 'examples/origin/dayshift.yaml'), 'utf8')).config,
    shop: configSchema.parse(shop),
    // Host names that do not resolve here, and AJP members.
    'origin-import': configSchema.parse(importApacheFile(join(root, 'examples/apache-origin/httpd.conf')).config),
    corners,
  };
}

test('dayshift export writes the file, prints the driver section, and refuses an unknown target', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-export-cli-'));
  const main = join(root, 'dist/src/cli/main.js');
  const config = join(root, 'examples/origin/dayshift.yaml');
  try {
    const out = join(dir, 'haproxy.cfg');
    const { stdout } = await run(process.execPath, [
      main,
      'export',
      'haproxy',
      '-c',
      config,
      '-o',
      out,
      '--socket',
      '/run/haproxy/admin.sock',
    ]);
    assert.match(stdout, /^wrote .*haproxy\.cfg \(haproxy\); \d+ note\(s\)/);
    assert.match(
      stdout,
      /driver section for dayshift\.yaml: \{"type":"haproxy","socket":"\/run\/haproxy\/admin\.sock","backend":"public"/,
    );
    const exported = await readFile(out, 'utf8');
    assert.match(exported, /^backend public$/m);
    assert.match(exported, /^ {4}timeout tunnel 3600000ms$/m, 'timeouts.tunnel (default 1h) as timeout tunnel');
    assert.match(
      exported,
      /^ {4}timeout queue 5000ms$/m,
      'timeouts.queue (default: timeouts.connect) as timeout queue',
    );
    assert.match(
      exported,
      /^ {4}server \S+ .* maxconn 512 maxqueue 1024( |$)/m,
      'limits.pool_max and limits.queue as maxconn and maxqueue',
    );
    const json = JSON.parse(
      (await run(process.execPath, [main, 'export', 'apache', '-c', config, '--json'])).stdout,
    ) as { driver: unknown; text: string };
    assert.deepEqual(json.driver, {
      type: 'apache',
      url: 'http://127.0.0.1:8099/balancer-manager',
      balancer: 'public',
    });
    assert.match(json.text, /^BalancerPersist On$/m);
    await assert.rejects(
      run(process.execPath, [main, 'export', 'nginx', '-c', config]),
      (err: { code: number; stderr: string }) => err.code === 2 && /expected apache or haproxy/.test(err.stderr),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('exported configs are accepted by the real programs', () => {
  let dir: string;
  let all: Record<string, DayshiftConfig>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-export-'));
    await mkdir(join(dir, 'run'));
    all = await configs(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('apache2 -t accepts the httpd.conf export of each config', async (t) => {
    const apache2 = requirePeer(t, 'apache2', 'apache2');
    if (!apache2) return;
    for (const [name, config] of Object.entries(all)) {
      const { text } = exportApache(config, { manager: '127.0.0.1:18099', source: `${name}.yaml` });
      const file = join(dir, `${name}-httpd.conf`);
      await writeFile(file, `${preamble(18098, dir, EXTRA_MODULES)}\n${text}`);
      const result = await run(apache2, ['-t', '-f', file]).catch((err: { stderr: string }) =>
        assert.fail(`${name}: ${err.stderr}\n${text}`),
      );
      assert.match(result.stderr, /Syntax OK/, name);
    }
  });

  test('haproxy -c accepts the haproxy.cfg export of each config', async (t) => {
    const haproxy = requirePeer(t, 'haproxy', 'haproxy');
    if (!haproxy) return;
    for (const [name, config] of Object.entries(all)) {
      const { text } = exportHaproxy(config, {
        socket: join(dir, 'admin.sock'),
        stateFile: join(dir, 'state'),
        source: `${name}.yaml`,
      });
      const file = join(dir, `${name}-haproxy.cfg`);
      await writeFile(file, text);
      const result = await run(haproxy, ['-c', '-f', file]).catch((err: { stdout: string; stderr: string }) =>
        assert.fail(`${name}: ${err.stdout}${err.stderr}\n${text}`),
      );
      assert.match(result.stdout + result.stderr, /Configuration file is valid/, name);
    }
  });
});

/**
 * Runs the release step the conductor runs, as desired states the driver applies (the control plane's
 * path): drain prod-a under load (its bound sessions still reach it), wait until it is idle, take it out;
 * QA still reaches it; put it back. 0 failed requests, and no load request started after the drain took
 * effect reached prod-a on the public site.
 */
async function drainUnderLoad(config: DayshiftConfig, publicUrl: string, backends: Backend[]): Promise<void> {
  const driver = createDriver(config);
  try {
    await waitFor('all members up', async () =>
      (await driver.status()).clusters.every((c) => c.members.every((m) => m.health === 'up')) ? true : undefined,
    );
    const state = await AppliedState.open(driver, initialState(config));
    const load = startLoad(publicUrl, {
      concurrency: 4,
      maxRequests: 3000,
      maxMs: 30_000,
      headers: { host: 'example.com' },
    });
    await load.completed(100);
    await state.setTraffic('prod-a', 'draining');
    const changed = Date.now();
    // A session bound to a1 still reaches it while prod-a drains; a new one does not.
    const bound = await request(publicUrl, { headers: { host: 'example.com', cookie: 'JSESSIONID=0123456789.a1' } });
    assert.equal(await bound.body.text(), 'a1');
    assert.equal((await waitUntilIdle(driver, 'prod-a', { timeoutMs: 10_000, intervalMs: 50 })).idle, true);
    await state.setTraffic('prod-a', 'out');
    const served = () => backends[2]!.received.length + backends[3]!.received.length;
    const before = served();
    await waitFor(
      'prod-b to serve 200 more requests',
      async () => (served() >= before + 200 ? true : undefined),
      20_000,
    );
    const qa = await request(publicUrl, { headers: { host: 'prod-a.example.com' } });
    assert.equal(qa.statusCode, 200, 'the QA site reaches prod-a while it is out');
    assert.match(await qa.body.text(), /^a[12]$/);
    // However the name is spelled (case, port, the trailing dot of an absolute name), it is the same site.
    const spelled = await request(publicUrl, { headers: { host: 'PROD-A.example.com.:80' } });
    assert.equal(spelled.statusCode, 200);
    assert.match(await spelled.body.text(), /^a[12]$/, 'another spelling of the QA host reached another site');
    const result = await load.stop();
    assert.deepEqual(result.errors, []);
    const late = backends
      .slice(0, 2)
      .flatMap((b) => b.received.filter((r) => r.start > changed && r.seq >= 0).map((r) => `${b.name} #${r.seq}`));
    assert.deepEqual(late, []);
    await state.setTraffic('prod-a', 'live');
    assert.deepEqual(
      (await driver.status()).clusters.map((c) => c.traffic),
      ['live', 'live'],
    );
  } finally {
    await driver.close();
  }
}

describe('an exported config, run by the real program and driven by Dayshift', () => {
  let backends: Backend[] = [];
  before(async () => {
    backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startBackend));
  });
  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
  });

  test('apache: export, start httpd with it, drain prod-a under load through the driver', async (t) => {
    const apache2 = requirePeer(t, 'apache2', 'apache2');
    if (!apache2) return;
    const lb = await startExportedHttpd(apache2, backends);
    try {
      assert.equal(lb.config.driver?.type, 'apache');
      await drainUnderLoad(lb.config, lb.url, backends);
    } finally {
      await lb.stop();
    }
  });

  test('haproxy: export, start haproxy with it, drain prod-a under load through the driver', async (t) => {
    const haproxy = requirePeer(t, 'haproxy', 'haproxy');
    if (!haproxy) return;
    const lb = await startExportedHaproxy(haproxy, backends);
    try {
      await drainUnderLoad(lb.config, lb.url, backends);
    } finally {
      await lb.stop();
    }
  });
});

test('proxy_protocol exports as accept-proxy and send-proxy(-v2) for HAProxy, and as notes for httpd', async (t) => {
  const { config } = parseConfig(`
listen: { http: [127.0.0.1:18080, { address: 127.0.0.1:18081, proxy_protocol: true }] }
trusted_proxies: [10.0.0.5]
clusters:
  c: { proxy_protocol: v2, members: [{ url: "http://127.0.0.1:9001" }, { url: "http://127.0.0.1:9002", proxy_protocol: v1 }] }
sites: { s: { hosts: ["*"], routes: [{ path: /, clusters: [c] }] } }
`);
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-export-pp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const haproxy = exportHaproxy(config, {
    socket: join(dir, 'admin.sock'),
    stateFile: join(dir, 'state'),
    source: 'pp.yaml',
  });
  assert.match(haproxy.text, /bind 127\.0\.0\.1:18080\n/);
  assert.match(haproxy.text, /bind 127\.0\.0\.1:18081 accept-proxy\n/);
  assert.match(haproxy.text, /server \S+ 127\.0\.0\.1:9001 .*send-proxy-v2 check-send-proxy/);
  assert.match(haproxy.text, /server \S+ 127\.0\.0\.1:9002 .*send-proxy check-send-proxy/);
  assert.match(
    haproxy.text,
    /bind 127\.0\.0\.1:18081 accept-proxy\n {4}tcp-request connection reject unless \{ src 10\.0\.0\.5 \}\n/,
  );
  const binary = requirePeer(t, 'haproxy', 'haproxy');
  if (binary) {
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, haproxy.text);
    await run(binary, ['-c', '-f', file]).catch((err: { stdout: string; stderr: string }) =>
      assert.fail(`${err.stdout}${err.stderr}\n${haproxy.text}`),
    );
  }
  const apache = exportApache(config, { manager: '127.0.0.1:18099', source: 'pp.yaml' });
  assert.ok(apache.notes.some((n) => n.path === 'listen.http' && /RemoteIPProxyProtocol On/.test(n.message)));
  assert.ok(
    apache.notes.some(
      (n) => /members\[0\]\.proxy_protocol$/.test(n.path) && /does not send the PROXY protocol/.test(n.message),
    ),
  );
});
