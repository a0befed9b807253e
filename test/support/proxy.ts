// Starts the built-in proxy on loopback for a test, from a config object (validated like a file).
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import pino from 'pino';
import { parseConfig, type LoadedConfig } from '../../src/config/load.js';
import { initialState } from '../../src/control/desired-state.js';
import type { DesiredState } from '../../src/model.js';
import type { AccessEntry } from '../../src/proxy/access-log.js';
import type { ProxyHandle, SessionObserver } from '../../src/proxy/handle.js';
import { startProxy } from '../../src/proxy/proxy.js';

export interface TestProxy {
  handle: ProxyHandle;
  loaded: LoadedConfig;
  state: DesiredState;
  port: number;
  url: string;
  /** The config as given (before parsing), for tests that change it and apply() again. */
  raw: Record<string, unknown>;
  /** Applies a changed config and/or state, as the control plane would. */
  reapply(raw?: Record<string, unknown>, state?: DesiredState): void;
}

/** `config` is the YAML document as an object; listen defaults to an http listener on a free port. */
export async function startTestProxy(
  config: Record<string, unknown>,
  options: { sessions?: SessionObserver; cookieSecret?: string } = {},
): Promise<TestProxy> {
  const raw = { listen: { http: '127.0.0.1:0' }, ...config };
  const loaded = loadObject(raw);
  const state = initialState(loaded.config);
  const handle = await startProxy({ config: loaded, state, logger: pino({ level: 'silent' }), ...options });
  const port = handle.addresses().http[0]?.port ?? 0;
  const proxy: TestProxy = {
    handle,
    loaded,
    state,
    port,
    url: `http://127.0.0.1:${port}`,
    raw,
    reapply(nextRaw = proxy.raw, nextState = proxy.state) {
      proxy.raw = nextRaw;
      proxy.loaded = loadObject(nextRaw);
      proxy.state = nextState;
      handle.apply(proxy.loaded, nextState);
    },
  };
  return proxy;
}

export function loadObject(config: Record<string, unknown>): LoadedConfig {
  return { ...parseConfig(JSON.stringify(config)), baseDir: process.cwd() };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request through a fresh connection (no pooling surprises between tests). */
export function request(
  port: number,
  options: {
    path?: string;
    host?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    agent?: http.Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        headers: { host: options.host ?? 'example.com', ...options.headers },
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The entries of a JSON access log file, once it has at least `count` (polled, 5 s at most). */
export async function accessEntries(file: string, count = 1): Promise<AccessEntry[]> {
  let entries: AccessEntry[] = [];
  await waitFor(
    async () => {
      const text = await readFile(file, 'utf8').catch(() => '');
      entries = text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AccessEntry);
      return entries.length >= count;
    },
    5000,
    `${count} access log entries`,
  );
  return entries;
}

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
