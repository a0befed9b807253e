// Starts the real Apache httpd (Debian apache2) on a loopback port with a generated config, in the
// foreground, in its own mkdtemp directory; stopped by its PID.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { apacheDriverSchema, type ApacheDriverConfig } from '../../src/config/driver-schema.js';
import { clusterSchema, type ClusterConfig } from '../../src/config/schema.js';
import type { Backend } from './backends.js';
import { Foreground, waitFor } from './process.js';
import { freePort } from '../../src/ports.js';

export const APACHE_MODULES_DIR = '/usr/lib/apache2/modules';

/** Modules a balancer with a balancer-manager needs (mod_<name>.so). */
const MODULES = [
  'mpm_event',
  'authz_core',
  'authz_host',
  'proxy',
  'proxy_http',
  'proxy_ajp',
  'proxy_balancer',
  'slotmem_shm',
  'lbmethod_byrequests',
  'lbmethod_bybusyness',
  'status',
  'headers',
];

export function moduleLines(modules: string[] = MODULES): string {
  return modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES_DIR}/mod_${m}.so`).join('\n');
}

export interface HttpdOptions {
  /** Directives placed after the common preamble (Listen, modules, runtime dir); may use {PORT}. */
  body: string;
  /** Extra modules besides the defaults. */
  modules?: string[];
}

export interface Httpd {
  port: number;
  dir: string;
  /** http://127.0.0.1:PORT */
  url: string;
  managerUrl: string;
  /** httpd's output and error log, for failure messages. */
  log(): Promise<string>;
  /** Stops httpd and starts it again on the same config and port (a full stop and start). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Common preamble: Listen, modules, a world-readable DocumentRoot (children run as www-data). */
export function preamble(port: number, dir: string, modules: string[] = []): string {
  return [
    `Listen 127.0.0.1:${port}`,
    'ServerName 127.0.0.1',
    `ServerRoot "${dir}"`,
    `DefaultRuntimeDir "${dir}/run"`,
    `PidFile "${dir}/run/httpd.pid"`,
    `ErrorLog "${dir}/error.log"`,
    'LogLevel warn',
    'DocumentRoot "/usr/share/apache2/default-site"',
    '<Directory />',
    '  AllowOverride None',
    '</Directory>',
    'User www-data',
    'Group www-data',
    moduleLines([...MODULES, ...modules]),
    // The readiness probe; excluded from any ProxyPass / the test's body declares.
    'ProxyPass /server-status !',
    '<Location /server-status>',
    '  SetHandler server-status',
    '  Require ip 127.0.0.1',
    '</Location>',
  ].join('\n');
}

export async function startHttpd(binary: string, options: HttpdOptions): Promise<Httpd> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-httpd-'));
  // Children run as www-data and must reach the runtime dir (slotmem files).
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'run'), { mode: 0o777 });
  await chmod(join(dir, 'run'), 0o777);
  const port = await freePort();
  const conf = join(dir, 'httpd.conf');
  await writeFile(
    conf,
    `${preamble(port, dir, options.modules)}\n${options.body.replaceAll('{PORT}', String(port))}\n`,
  );
  const run = () => new Foreground(binary, ['-f', conf, '-DFOREGROUND'], dir);
  let proc = run();
  const url = `http://127.0.0.1:${port}`;
  const ready = () =>
    waitFor('httpd to answer /server-status?auto', async () => {
      if (!proc.running) throw new Error(`httpd exited: ${proc.log}`);
      const res = await request(`${url}/server-status?auto`);
      const text = await res.body.text();
      return res.statusCode === 200 && text.includes('ServerVersion') ? true : undefined;
    });
  try {
    await ready();
  } catch (err) {
    await proc.stop();
    (err as Error).message +=
      `\nhttpd output:\n${proc.log}\n${(await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')).slice(-3000)}`;
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    dir,
    url,
    managerUrl: `${url}/balancer-manager`,
    log: async () => `${proc.log}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`,
    restart: async () => {
      await proc.stop();
      proc = run();
      await ready();
    },
    stop: async () => {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface BalancedHttpd {
  httpd: Httpd;
  /** Dayshift clusters whose member URLs are the BalancerMember URLs (route = backend name). */
  clusters: Record<string, ClusterConfig>;
  /** The `driver:` section for this httpd. */
  driver: ApacheDriverConfig;
}

/**
 * httpd with one public balancer "web-prod" over every backend of every cluster (route = backend name,
 * sticky on ROUTEID), a QA balancer per cluster on /qa/CLUSTER/, and the balancer-manager — the origin
 * document's layout on one port. A conductor test can run a whole release against it.
 */
export async function startBalancedHttpd(
  binary: string,
  clusters: Record<string, Backend[]>,
  options: { persist?: boolean; proxySet?: string } = {},
): Promise<BalancedHttpd> {
  const members = (backends: Backend[]) =>
    backends.map((b) => `  BalancerMember ${b.url} route=${b.name} retry=0`).join('\n');
  const qa = Object.entries(clusters).map(
    ([name, backends]) =>
      `<Proxy balancer://qa-${name}>\n${members(backends)}\n</Proxy>\nProxyPass /qa/${name}/ balancer://qa-${name}/`,
  );
  const httpd = await startHttpd(binary, {
    body: [
      `BalancerPersist ${options.persist === false ? 'Off' : 'On'}`,
      '<Proxy balancer://web-prod>',
      members(Object.values(clusters).flat()),
      `  ProxySet lbmethod=byrequests stickysession=ROUTEID ${options.proxySet ?? ''}`,
      '</Proxy>',
      'ProxyPass /balancer-manager !',
      ...qa,
      'ProxyPass / balancer://web-prod/',
      '<Location /balancer-manager>',
      '  SetHandler balancer-manager',
      '  Require ip 127.0.0.1',
      '</Location>',
    ].join('\n'),
  });
  return {
    httpd,
    clusters: Object.fromEntries(
      Object.entries(clusters).map(([name, backends]) => [
        name,
        clusterSchema.parse({ members: backends.map((b) => ({ url: b.url, route: b.name })) }),
      ]),
    ),
    driver: apacheDriverSchema.parse({ type: 'apache', url: httpd.managerUrl, balancer: 'web-prod' }),
  };
}
