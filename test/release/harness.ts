// The release tests' world: the demo app servers (two clusters of two) behind a real Dayshift (proxy,
// control plane, conductor, admin API) on loopback, configured by the demo's config with test changes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { startDayshift, type Dayshift } from '../../src/dayshift.js';
import { DEMO_TOKEN_ENV, demoConfig, shellQuote, startDemoApps, type DemoApps } from '../../src/demo/environment.js';
import type { Release } from '../../src/release/types.js';
import { freePort } from '../../src/ports.js';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const DAYSHIFT = `${shellQuote(process.execPath)} ${shellQuote(MAIN)}`;

export interface World {
  apps: DemoApps;
  dir: string;
  configFile: string;
  httpPort: number;
  adminPort: number;
  origin: string;
  publicHost: string;
  close(): Promise<void>;
}

export interface WorldOptions {
  release?: Record<string, unknown>;
  drainIdle?: string;
  drainDeadline?: string;
}

/** Demo app servers and a config file for them; Dayshift itself is started by the caller. */
export async function makeWorld(options: WorldOptions = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-release-test-'));
  const apps = await startDemoApps('1.0', { restartMs: 200 });
  process.env[DEMO_TOKEN_ENV] = apps.token;
  const httpPort = await freePort();
  const adminPort = await freePort();
  const config = demoConfig({
    apps: apps.apps,
    httpPort,
    adminPort,
    stateDir: join(dir, 'state'),
    dayshiftCommand: DAYSHIFT,
    drainIdle: options.drainIdle ?? '1s',
    drainDeadline: options.drainDeadline ?? '60s',
    release: { health: { timeout: '20s', stable: '500ms' }, ...options.release },
  });
  const configFile = join(dir, 'dayshift.yaml');
  await writeFile(configFile, stringify(config));
  return {
    apps,
    dir,
    configFile,
    httpPort,
    adminPort,
    origin: `http://127.0.0.1:${httpPort}`,
    publicHost: `localhost:${httpPort}`,
    close: async () => {
      await apps.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startInProcess(world: World): Promise<Dayshift> {
  return startDayshift(await loadConfigFile(world.configFile), pino({ level: 'silent' }));
}

/** Calls the admin API; returns status and JSON body. */
export async function api<T = Release>(
  adminUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${adminUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Polls until `check` returns a value (not undefined), or fails at the deadline. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the in-process conductor's release is in one of the states. */
export function releaseIn(dayshift: Dayshift, states: Release['state'][], timeoutMs = 90_000): Promise<Release> {
  return until(
    `release in ${states.join('/')}`,
    () => {
      const r = dayshift.conductor.current();
      return r && states.includes(r.state) ? r : undefined;
    },
    timeoutMs,
  );
}

export async function allUp(dayshift: Dayshift): Promise<void> {
  await until(
    'all members up',
    async () =>
      (await dayshift.plane.status()).clusters.every((c) => c.members.every((m) => m.health === 'up'))
        ? true
        : undefined,
    15_000,
  );
}

/** Runs the dayshift CLI to completion; returns exit code and output. */
export async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** `dayshift start -c FILE` as a child process, ready once its admin API answers. */
export async function startChild(
  world: World,
): Promise<{ child: ChildProcess; adminUrl: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [MAIN, 'start', '-c', world.configFile], {
    env: { ...process.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const adminUrl = `http://127.0.0.1:${world.adminPort}`;
  await until(
    `dayshift start to answer (stderr: ${stderr})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`dayshift start exited with ${child.exitCode}: ${stderr}`);
      try {
        return (await fetch(`${adminUrl}/healthz`)).ok ? true : undefined;
      } catch {
        return undefined;
      }
    },
    20_000,
  );
  return {
    child,
    adminUrl,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
