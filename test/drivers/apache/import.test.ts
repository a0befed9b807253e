import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseApacheConf } from '../../../src/drivers/apache/conf-parser.js';
import { ApacheConfError } from '../../../src/drivers/errors.js';
import { importApacheFile, toCidr, type ImportNote } from '../../../src/drivers/apache/import.js';
import { parseConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const origin = join(root, 'examples/apache-origin/httpd.conf');
const shop = join(root, 'test/fixtures/apache-shop');
const run = promisify(execFile);

const where = (notes: ImportNote[], kind: ImportNote['kind']) =>
  notes.filter((n) => n.kind === kind).map((n) => `${n.file.split('/').pop()}:${n.line} ${n.directive}`);

test('the origin config becomes prod-a, prod-b, their QA sites and one public site over both', () => {
  const { config, notes, yaml } = importApacheFile(origin);
  const parsed = configSchema.parse(config);
  assert.deepEqual(Object.keys(parsed.clusters), ['prod-a', 'prod-b']);
  assert.deepEqual(
    parsed.clusters['prod-b']!.members.map((m) => m.url),
    [1, 2, 3, 4].map((i) => `ajp://web-${i}.prod-b.example.com:8009`),
  );
  assert.deepEqual(
    Object.fromEntries(
      Object.entries(parsed.sites).map(([name, s]) => [
        name,
        { hosts: s.hosts, clusters: s.routes.map((r) => r.clusters), preserve: s.preserve_host },
      ]),
    ),
    {
      'qa-prod-a': { hosts: ['prod-a.example.com'], clusters: [['prod-a']], preserve: true },
      'qa-prod-b': { hosts: ['prod-b.example.com'], clusters: [['prod-b']], preserve: true },
      public: { hosts: ['example.com', 'www.example.com'], clusters: [['prod-a', 'prod-b']], preserve: true },
    },
  );
  assert.deepEqual(parsed.listen.http, { host: '0.0.0.0', port: 80 });
  assert.deepEqual(where(notes, 'untranslated'), []);
  // Nothing silently: the three ProxyPassReverse lines are reported with their lines.
  assert.deepEqual(where(notes, 'skipped'), [
    'httpd.conf:8 ProxyPassReverse / balancer://web-prod-a/',
    'httpd.conf:22 ProxyPassReverse / balancer://web-prod-b/',
    'httpd.conf:38 ProxyPassReverse / balancer://web-prod/',
  ]);
  // The YAML text is what `dayshift check` reads.
  assert.deepEqual(Object.keys(parseConfig(yaml).config.sites), ['qa-prod-a', 'qa-prod-b', 'public']);
});

test('a larger config: Include of a glob and a directory, SSL vhost merged with its :80 twin, ProxySet, Require ip and Allow/Deny', () => {
  const { config, notes } = importApacheFile(join(shop, 'httpd.conf'), { serverRoot: shop });
  const parsed = configSchema.parse(config);
  assert.deepEqual(Object.keys(parsed.clusters), ['shop-a', 'shop-b', 'api', 'legacy', 'shop']);
  assert.deepEqual(parsed.listen.https, { host: '0.0.0.0', port: 443 });
  const pub = parsed.sites.public!;
  assert.deepEqual(pub.hosts, ['www.shop.example', 'shop.example']);
  assert.deepEqual(pub.tls, { cert: '/etc/ssl/certs/shop.pem', key: '/etc/ssl/private/shop.key' });
  assert.deepEqual(pub.cookie_domain, { 'internal.shop.example': 'shop.example' });
  assert.deepEqual(
    pub.routes.map((r) => ({
      path: r.path,
      clusters: r.clusters,
      balance: r.balance,
      sticky: r.sticky && [r.sticky.cookie, r.sticky.path_param, r.sticky.nofailover],
      strip: r.strip_prefix,
    })),
    [
      { path: '/api/', clusters: ['api'], balance: 'round-robin', sticky: undefined, strip: true },
      {
        path: '/',
        clusters: ['shop-a', 'shop-b', 'shop'],
        balance: 'least-busy',
        sticky: ['JSESSIONID', 'jsessionid', true],
        strip: false,
      },
    ],
  );
  assert.deepEqual(
    parsed.clusters['shop-a']!.members.map((m) => [m.route, m.weight, m.secret]),
    [
      ['a1', 1, 's3cr3t'],
      ['a2', 2, 's3cr3t'],
    ],
  );
  assert.deepEqual(
    parsed.clusters.shop!.members.map((m) => [m.route, m.state]),
    [['spare', 'standby']],
  );
  assert.deepEqual(
    parsed.clusters.api!.members.map((m) => [m.state, m.tls_verify, m.health?.path]),
    [
      ['ready', false, '/ping'],
      ['disabled', false, '/ping'],
    ],
  );
  assert.deepEqual(parsed.sites['qa-shop-a']!.allow, ['192.168.10.0/24', '10.8.0.0/16']);
  assert.deepEqual(
    [parsed.sites['qa-shop-b']!.allow, parsed.sites['qa-shop-b']!.deny],
    [['192.168.10.0/24', '10.8.0.0/16'], ['192.168.10.66']],
  );
  assert.equal(parsed.timeouts.first_byte, 120_000);
  assert.deepEqual(where(notes, 'untranslated'), [
    'balancers.conf:9 BalancerMember ... retry=5',
    'balancers.conf:18 ProxySet ... timeout=30',
    '000-www.conf:4 RewriteEngine On',
    '000-www.conf:5 RewriteRule ^/old/(.*)$ /new/$1 [R=301,L]',
    '000-www.conf:7 ProxyPass /balancer-manager !',
    '000-www.conf:21 SSLProtocol all -SSLv3',
    '020-admin.conf:1 <VirtualHost 127.0.0.1:80>',
    '020-admin.conf:5 Require ip 127.0.0.1',
    '020-admin.conf:9 Require ip 127.0.0.1',
  ]);
  // Every directive of every file is accounted for: translated ones leave no note, the rest do.
  assert.ok(
    where(notes, 'skipped').includes('httpd.conf:7 LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so'),
  );
});

test('Include: sorted globs without dot files, continued lines, Define, IncludeOptional of nothing, errors with file:line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-import-'));
  try {
    await mkdir(join(dir, 'parts'));
    await writeFile(join(dir, 'parts', 'b.conf'), 'ServerAlias b.example\n');
    await writeFile(join(dir, 'parts', 'a.conf'), 'ServerAlias a.example\n');
    await writeFile(join(dir, 'parts', '.hidden.conf'), 'ServerAlias hidden.example\n');
    await writeFile(
      join(dir, 'main.conf'),
      'Define APP http://127.0.0.1:9001\n<VirtualHost *:8080>\n  ServerName x.example\n  Include parts/*.conf\n  IncludeOptional nothing/*.conf\n  ProxyPass / \\\n    ${APP}/\n  ErrorLog ${APACHE_LOG_DIR}/x.log\n</VirtualHost>\n',
    );
    const vhost = parseApacheConf(join(dir, 'main.conf'))[1]!;
    assert.deepEqual(
      vhost.children!.map((d) => `${d.file.split('/').pop()}:${d.line} ${d.name} ${d.args.join(' ')}`),
      [
        'main.conf:3 ServerName x.example',
        'a.conf:1 ServerAlias a.example',
        'b.conf:1 ServerAlias b.example',
        'main.conf:6 ProxyPass / http://127.0.0.1:9001/',
        'main.conf:8 ErrorLog ${APACHE_LOG_DIR}/x.log',
      ],
    );
    const { config } = importApacheFile(join(dir, 'main.conf'));
    assert.deepEqual((config.sites as Record<string, { hosts: string[] }>)['x.example']!.hosts, [
      'x.example',
      'a.example',
      'b.example',
    ]);

    await writeFile(join(dir, 'missing.conf'), 'Listen 80\nInclude nope.conf\n');
    assert.throws(
      () => parseApacheConf(join(dir, 'missing.conf')),
      (err: unknown) =>
        err instanceof ApacheConfError && /missing\.conf:2: Include nope\.conf: no such file/.test(err.message),
    );
    await writeFile(join(dir, 'open.conf'), '<VirtualHost *:80>\nServerName a\n');
    assert.throws(() => parseApacheConf(join(dir, 'open.conf')), /open\.conf:1: <VirtualHost> is never closed/);
    await writeFile(join(dir, 'loop.conf'), 'Include loop.conf\n');
    assert.throws(() => parseApacheConf(join(dir, 'loop.conf')), /include loop/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("httpd's address forms become CIDR blocks", () => {
  assert.equal(toCidr('10.8'), '10.8.0.0/16');
  assert.equal(toCidr('192.168.10.0/255.255.255.0'), '192.168.10.0/24');
  assert.equal(toCidr('127.0.0.1'), '127.0.0.1');
  assert.equal(toCidr('2001:db8::/32'), '2001:db8::/32');
  assert.equal(toCidr('example.com'), undefined);
});

test('dayshift import apache -o writes a file that dayshift check accepts, and --json reports the notes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-import-cli-'));
  const main = join(root, 'dist/src/cli/main.js');
  try {
    const out = join(dir, 'dayshift.yaml');
    const written = await run(process.execPath, [main, 'import', 'apache', origin, '-o', out]);
    assert.match(
      written.stdout,
      /wrote .*dayshift\.yaml: 2 cluster\(s\), 3 site\(s\); 0 directive\(s\) not translated/,
    );
    // The origin's AJP balancers have no stickiness: Tomcat sessions need routes (jvmRoute).
    assert.match(
      written.stdout,
      /hint: sites qa-prod-a, qa-prod-b, public: ajp members without sticky sessions.*jvmRoute/,
    );
    const checked = await run(process.execPath, [main, 'check', '-c', out]);
    assert.match(checked.stdout, /ok .*: 3 site\(s\), 2 cluster\(s\), 8 member\(s\)/);
    assert.match(checked.stdout, /warning: sites qa-prod-a, qa-prod-b, public: ajp members without sticky sessions/);
    await assert.rejects(
      run(process.execPath, [main, 'import', 'apache', origin, '-o', out]),
      (err: { code: number; stderr: string }) => err.code === 2 && /exists/.test(err.stderr),
    );
    const json = JSON.parse(
      (
        await run(process.execPath, [
          main,
          'import',
          'apache',
          join(shop, 'httpd.conf'),
          '--server-root',
          shop,
          '--json',
        ])
      ).stdout,
    ) as { untranslated: number; notes: ImportNote[] };
    assert.equal(json.untranslated, 9);
    assert.ok(json.notes.every((n) => n.line > 0 && n.file.endsWith('.conf')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('without Listen, a VirtualHost address keeps its interface (127.0.0.1:80 stays on loopback); * listens on all', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-import-listen-'));
  try {
    const only = async (text: string) => {
      await writeFile(join(dir, 'httpd.conf'), text);
      return configSchema.parse(importApacheFile(join(dir, 'httpd.conf')).config).listen.http;
    };
    const vhost = (address: string, name: string) =>
      `<VirtualHost ${address}>\n  ServerName ${name}\n  ProxyPass / http://10.0.0.1:8080/\n</VirtualHost>\n`;
    assert.deepEqual(await only(vhost('127.0.0.1:80', 'a.example')), { host: '127.0.0.1', port: 80 });
    assert.deepEqual(await only(vhost('127.0.0.1:80', 'a.example') + vhost('*:80', 'b.example')), {
      host: '0.0.0.0',
      port: 80,
    });
    assert.deepEqual(await only(vhost('127.0.0.1:8080', 'a.example') + vhost('10.1.2.3:8080', 'b.example')), [
      { host: '127.0.0.1', port: 8080 },
      { host: '10.1.2.3', port: 8080 },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the import turns active health checks on, on a path the config names', () => {
  const { config, yaml } = importApacheFile(origin);
  assert.deepEqual(configSchema.parse(config).health, {
    ...configSchema.parse(config).health,
    enabled: true,
    path: '/',
  });
  assert.match(yaml, /^# Active health checks are on: GET health\.path \(\/\)/m);
  assert.match(yaml, /^health:\n {2}enabled: true\n {2}path: \//m);
});
