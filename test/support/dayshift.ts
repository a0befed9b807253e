// Starts a whole Dayshift (proxy, control plane, admin API) in-process for a test, from a config object
// written to a YAML file in its own temp directory, so that reload and state persistence work as in
// production.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { startDayshift, type Dayshift } from '../../src/dayshift.js';

export interface TestDayshift {
  dayshift: Dayshift;
  dir: string;
  configFile: string;
  /** Public listener port of the built-in proxy (0 with an external driver). */
  port: number;
  adminUrl: string;
  token: string;
  /** Calls the admin API with the token; returns status and parsed JSON body. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Rewrites the config file (for reload tests). */
  writeConfig(config: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

export function baseConfig(dir: string, config: Record<string, unknown>): Record<string, unknown> {
  return {
    listen: { http: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    state_dir: join(dir, 'state'),
    log: { level: 'silent' },
    ...config,
  };
}

/** `logger` replaces the silent one, for tests that assert what Dayshift logs. */
export async function startTestDayshift(
  config: Record<string, unknown>,
  existingDir?: string,
  logger: Logger = pino({ level: 'silent' }),
): Promise<TestDayshift> {
  const dir = existingDir ?? (await mkdtemp(join(tmpdir(), 'dayshift-test-')));
  const configFile = join(dir, 'dayshift.yaml');
  const writeConfig = (c: Record<string, unknown>) => writeFile(configFile, stringify(baseConfig(dir, c)));
  await writeConfig(config);
  const loaded = await loadConfigFile(configFile);
  const dayshift = await startDayshift(loaded, logger);
  const token = dayshift.token.value;
  const adminUrl = dayshift.adminUrl;
  return {
    dayshift,
    dir,
    configFile,
    port: dayshift.proxy?.addresses().http[0]?.port ?? 0,
    adminUrl,
    token,
    async api<T>(method: string, path: string, body?: unknown) {
      const response = await fetch(`${adminUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return {
        status: response.status,
        body: (text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T,
      };
    },
    writeConfig,
    async stop() {
      await dayshift.close(1000);
      if (!existingDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
