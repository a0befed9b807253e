// A Dayshift configuration of two clusters (prod-a, prod-b) of real backends, with a public site and a
// QA site per cluster, exported to Apache httpd or HAProxy and run by the real program: the setup a
// release through the apache or haproxy driver runs against. `config` carries the `driver:` section, so
// `createDriver(lb.config)` drives it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { AuditLog } from '../../src/control/audit.js';
import { ControlPlane } from '../../src/control/plane.js';
import { createDriver } from '../../src/drivers/factory.js';
import { FileStore } from '../../src/store/file.js';
import type { DayshiftConfig } from '../../src/config/schema.js';
import { exportApache } from '../../src/drivers/apache/export.js';
import { exportHaproxy } from '../../src/drivers/haproxy/export.js';
import type { Backend } from './backends.js';
import { startHttpd } from './httpd.js';
import { startHaproxy } from './haproxy.js';
import { waitFor } from './process.js';
import { freePort } from '../../src/ports.js';

export interface RunningLoadBalancer {
  config: DayshiftConfig;
  /** http://127.0.0.1:PORT/ — send Host: example.com for the public site, prod-a.example.com for QA. */
  url: string;
  stop(): Promise<void>;
}

/** prod-a = backends[0..1], prod-b = backends[2..3]; routes are the backends' names. */
export function twoClusterConfig(port: number, backends: Backend[], driver: Record<string, unknown>): DayshiftConfig {
  const member = (b: Backend) => `{ url: "${b.url}", route: ${b.name} }`;
  return parseConfig(`
listen: { http: 127.0.0.1:${port} }
health: { path: /health, interval: 1s }
# Apache and HAProxy count requests, not sessions: a drain ends after this long without a new one.
drain: { session_idle: 2s }
clusters:
  prod-a: { members: [${backends.slice(0, 2).map(member).join(', ')}] }
  prod-b: { members: [${backends.slice(2, 4).map(member).join(', ')}] }
sites:
  public:
    hosts: [example.com]
    routes: [{ clusters: [prod-a, prod-b], sticky: { mode: route, cookie: JSESSIONID, path_param: jsessionid } }]
  qa-a: { hosts: [prod-a.example.com], routes: [{ clusters: [prod-a] }] }
  qa-b: { hosts: [prod-b.example.com], routes: [{ clusters: [prod-b] }] }
driver: ${JSON.stringify(driver)}
`).config;
}

/** `dayshift export apache` of the two-cluster config, run by apache2, with the balancer-manager on its own port. */
export async function startExportedHttpd(binary: string, backends: Backend[]): Promise<RunningLoadBalancer> {
  const port = await freePort();
  const manager = await freePort();
  const config = twoClusterConfig(port, backends, {
    type: 'apache',
    url: `http://127.0.0.1:${manager}/balancer-manager`,
    balancer: 'public',
  });
  const exported = exportApache(config, { manager: `127.0.0.1:${manager}`, source: 'test' });
  const httpd = await startHttpd(binary, { body: exported.text, modules: ['proxy_hcheck'] });
  return { config, url: `http://127.0.0.1:${port}/`, stop: () => httpd.stop() };
}

/** `dayshift export haproxy` of the two-cluster config, run by haproxy under the harness's global section. */
export async function startExportedHaproxy(binary: string, backends: Backend[]): Promise<RunningLoadBalancer> {
  const port = await freePort();
  // The socket and state file are the harness's; the export's global section is replaced by its own.
  const draft = twoClusterConfig(port, backends, { type: 'haproxy', socket: 'admin.sock', backend: 'public' });
  const exported = exportHaproxy(draft, { socket: 'admin.sock', stateFile: 'state', source: 'test' });
  const body = exported.text.slice(exported.text.indexOf('\nfrontend ') + 1);
  const lb = await startHaproxy(binary, body);
  const config = {
    ...draft,
    driver: {
      type: 'haproxy' as const,
      socket: lb.socket,
      backend: 'public',
      match: 'name' as const,
      state_file: lb.stateFile,
      timeout: 5000,
      verify_interval: 10_000,
    },
  };
  return { config, url: `http://127.0.0.1:${port}/`, stop: () => lb.stop() };
}

export interface PlaneOnLoadBalancer {
  plane: ControlPlane;
  audit: AuditLog;
  /** Closes the plane, the driver and the store, and removes the state directory. */
  close(): Promise<void>;
}

/**
 * A control plane driving a running load balancer through its configured driver, with a file store in a
 * temp dir, once every member is up. `config` defaults to the load balancer's own.
 */
export async function openPlaneOn(
  lb: RunningLoadBalancer,
  config: DayshiftConfig = lb.config,
): Promise<PlaneOnLoadBalancer> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-plane-'));
  const store = await FileStore.open(dir);
  const driver = createDriver(config);
  const audit = new AuditLog(dir);
  const plane = await ControlPlane.open({
    loaded: { config, file: join(dir, 'dayshift.yaml'), baseDir: dir, source: '' },
    store,
    driver,
    audit,
    logger: pino({ level: 'silent' }),
  });
  const close = async () => {
    await plane.close();
    await driver.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('all members up', async () =>
      (await plane.status()).clusters.every((c) => c.members.every((m) => m.health === 'up')) ? true : undefined,
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { plane, audit, close };
}
