// Starts the real HAProxy (Debian haproxy) in master-worker mode in the foreground, with a generated
// config on a loopback port, its Runtime API on a unix socket and a master socket for reloads, in its own
// mkdtemp directory; stopped by its PID.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyDriverSchema, type HaproxyDriverConfig } from '../../src/config/driver-schema.js';
import { clusterSchema, type ClusterConfig } from '../../src/config/schema.js';
import { RuntimeApiClient } from '../../src/drivers/haproxy/runtime-api.js';
import type { Backend } from './backends.js';
import { Foreground, waitFor } from './process.js';
import { freePort } from '../../src/ports.js';

export interface Haproxy {
  port: number;
  dir: string;
  url: string;
  /** The admin-level Runtime API socket. */
  socket: string;
  /** The server-state-file haproxy.cfg names (load-server-state-from-file global). */
  stateFile: string;
  runtime: RuntimeApiClient;
  /** Reloads through the master CLI and waits until the new worker answers. */
  reload(): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

/** `body` holds frontends and backends; {PORT} is replaced by the frontend port. */
export async function startHaproxy(
  binary: string,
  body: string,
  options: { global?: string[] } = {},
): Promise<Haproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-haproxy-'));
  const port = await freePort();
  const socket = join(dir, 'admin.sock');
  const master = join(dir, 'master.sock');
  const stateFile = join(dir, 'server-state');
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    [
      'global',
      `    stats socket ${socket} mode 600 level admin expose-fd listeners`,
      `    server-state-file ${stateFile}`,
      ...(options.global ?? []).map((line) => `    ${line}`),
      'defaults',
      '    mode http',
      '    timeout connect 2s',
      '    timeout client 30s',
      '    timeout server 30s',
      '    load-server-state-from-file global',
      body.replaceAll('{PORT}', String(port)),
      '',
    ].join('\n'),
  );
  const proc = new Foreground(binary, ['-W', '-S', master, '-f', cfg], dir);
  const runtime = new RuntimeApiClient({ socket }, 5000);
  const masterCli = new RuntimeApiClient({ socket: master }, 5000);
  const ready = async () => {
    if (!proc.running) throw new Error(`haproxy exited: ${proc.log}`);
    if (!(await runtime.command('show info')).includes('Name: HAProxy')) return undefined;
    // The master CLI comes up on its own schedule; reloads need it.
    return (await masterCli.command('show proc')).includes('worker') ? true : undefined;
  };
  try {
    await waitFor('haproxy to answer on its stats socket and master socket', ready);
  } catch (err) {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const workerPid = async () => /^Pid: (\d+)$/m.exec(await runtime.command('show info'))?.[1];
  return {
    port,
    dir,
    url: `http://127.0.0.1:${port}`,
    socket,
    stateFile,
    runtime,
    reload: async () => {
      const before = await workerPid();
      // Right after a reload the master socket refuses connections for a while: retry until it is sent.
      await waitFor(
        'the master socket to take "reload"',
        async () => ((await masterCli.command('reload')) === '' ? true : undefined),
        10_000,
        200,
      );
      // The stats socket passes to the new worker: its pid tells that the reload took place. (Probing
      // the master socket while the master re-executes itself was seen to leave it refusing.)
      await waitFor('a new haproxy worker after the reload', async () => {
        const pid = await workerPid();
        return pid !== undefined && pid !== before ? true : undefined;
      });
    },
    log: () => proc.log,
    stop: async () => {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface BalancedHaproxy {
  haproxy: Haproxy;
  clusters: Record<string, ClusterConfig>;
  driver: HaproxyDriverConfig;
}

/**
 * HAProxy with one public backend "web-prod" over every backend of every cluster (server name = route =
 * backend name, cookie SRVID stickiness, health checks), the layout `dayshift export haproxy` writes.
 */
export async function startBalancedHaproxy(
  binary: string,
  clusters: Record<string, Backend[]>,
  options: { global?: string[]; backup?: string[] } = {},
): Promise<BalancedHaproxy> {
  const servers = Object.values(clusters)
    .flat()
    .map(
      (b) =>
        `    server ${b.name} 127.0.0.1:${b.port} cookie ${b.name} check inter 1s${options.backup?.includes(b.name) ? ' backup' : ''}`,
    );
  const haproxy = await startHaproxy(
    binary,
    [
      'frontend fe',
      '    bind 127.0.0.1:{PORT}',
      '    default_backend web-prod',
      'backend web-prod',
      '    balance roundrobin',
      '    cookie SRVID insert indirect nocache',
      '    option httpchk GET /health',
      ...servers,
    ].join('\n'),
    options.global ? { global: options.global } : {},
  );
  return {
    haproxy,
    clusters: Object.fromEntries(
      Object.entries(clusters).map(([name, backends]) => [
        name,
        clusterSchema.parse({ members: backends.map((b) => ({ url: b.url, route: b.name })) }),
      ]),
    ),
    driver: haproxyDriverSchema.parse({ type: 'haproxy', socket: haproxy.socket, backend: 'web-prod' }),
  };
}
