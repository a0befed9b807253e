// The demo's world: two clusters of two demo app servers on loopback, and the Dayshift config that
// balances them (a public site, one QA site per cluster, a release plan whose deploy hook restarts the
// demo app servers with the new version). `dayshift demo` and the release tests both build it here.
import { randomBytes } from 'node:crypto';
import { DemoApp } from './app.js';

export const DEMO_CLUSTERS = { 'prod-a': ['a1', 'a2'], 'prod-b': ['b1', 'b2'] } as const;

/** Env var the deploy hook reads the demo app servers' control token from. */
export const DEMO_TOKEN_ENV = 'DAYSHIFT_DEMO_TOKEN';

export interface DemoApps {
  apps: DemoApp[];
  token: string;
  close(): Promise<void>;
}

export async function startDemoApps(version: string, options: { restartMs?: number } = {}): Promise<DemoApps> {
  const token = randomBytes(16).toString('hex');
  const apps: DemoApp[] = [];
  try {
    for (const [cluster, members] of Object.entries(DEMO_CLUSTERS)) {
      for (const member of members) {
        const app = new DemoApp({
          cluster,
          member,
          version,
          controlToken: token,
          ...(options.restartMs !== undefined ? { restartMs: options.restartMs } : {}),
        });
        await app.start();
        apps.push(app);
      }
    }
  } catch (err) {
    await Promise.all(apps.map((a) => a.close()));
    throw err;
  }
  return { apps, token, close: async () => void (await Promise.all(apps.map((a) => a.close()))) };
}

export interface DemoConfigOptions {
  apps: DemoApp[];
  httpPort: number;
  adminPort: number;
  stateDir: string;
  /** The command that runs `dayshift`, e.g. `"/usr/bin/node" "/…/dist/src/cli/main.js"`. */
  dayshiftCommand: string;
  drainIdle?: string;
  drainDeadline?: string;
  /** Merged over the demo's release plan. */
  release?: Record<string, unknown>;
}

/** The config document (as an object; YAML-able). */
export function demoConfig(o: DemoConfigOptions): Record<string, unknown> {
  const members = (cluster: string) =>
    o.apps.filter((a) => a.options.cluster === cluster).map((a) => ({ url: a.url, route: a.options.member }));
  return {
    listen: { http: `127.0.0.1:${o.httpPort}` },
    admin: { listen: `127.0.0.1:${o.adminPort}` },
    state_dir: o.stateDir,
    log: { level: 'warn', format: 'json' },
    health: { path: '/health', interval: '250ms', timeout: '1s', rise: 1, fall: 1 },
    drain: { session_idle: o.drainIdle ?? '2s', deadline: o.drainDeadline ?? '60s' },
    clusters: Object.fromEntries(Object.keys(DEMO_CLUSTERS).map((c) => [c, { members: members(c) }])),
    sites: {
      public: {
        hosts: ['localhost', '127.0.0.1'],
        routes: [{ path: '/', clusters: Object.keys(DEMO_CLUSTERS), sticky: { mode: 'route', cookie: 'JSESSIONID' } }],
      },
      'qa-a': { hosts: ['qa-a.localhost'], routes: [{ path: '/', clusters: ['prod-a'] }] },
      'qa-b': { hosts: ['qa-b.localhost'], routes: [{ path: '/', clusters: ['prod-b'] }] },
    },
    release: {
      hooks: {
        deploy: {
          run: `${o.dayshiftCommand} demo-deploy`,
          per: 'member',
          timeout: '30s',
          title: 'restart the demo app servers with the new version',
        },
      },
      health: { timeout: '30s', stable: '1s' },
      qa: [
        { path: '/health', status: 200 },
        { path: '/cart', status: 200, body: 'served by cluster' },
        // On the public host name, pinned by a preview to the cluster while it is out (the public gets the other).
        { path: '/cart', via: 'preview', status: 200, body: 'served by cluster <b>$DAYSHIFT_CLUSTER</b>' },
      ],
      approval: 'auto',
      shift: { mode: 'swap' },
      ...o.release,
    },
  };
}

/** Quotes a word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
