// Finds and calls the admin API for CLI commands: from --admin/--token/DAYSHIFT_TOKEN, or from the
// config file (admin.listen and the token file in the state directory).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { DEFAULT_CONFIG_FILE } from '../config/load.js';
import { address } from '../config/units.js';
import { listenerOrigin } from '../observe/status-report.js';
import { readTokenFile } from '../admin/token.js';
import { CliError, EXIT } from './output.js';
import { messageOf } from '../errors.js';

export interface ApiOptions {
  config?: string;
  admin?: string;
  token?: string;
  json?: boolean;
}

/** Adds the options every admin API command takes. */
export function apiCommand(command: Command): Command {
  return command
    .option(
      '-c, --config <file>',
      `configuration file (finds the admin address and token; default ${DEFAULT_CONFIG_FILE})`,
    )
    .option('--admin <url>', 'admin API URL, e.g. http://127.0.0.1:9900 (instead of --config)')
    .option('--token <token>', 'admin token (default: $DAYSHIFT_TOKEN, or the token file the config names)')
    .option('--json', 'print JSON for scripts');
}

export class AdminClient {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
  ) {}

  static async connect(options: ApiOptions): Promise<AdminClient> {
    let base = options.admin;
    let token = options.token ?? process.env.DAYSHIFT_TOKEN;
    if (!base || !token) {
      const file = options.config ?? DEFAULT_CONFIG_FILE;
      if (!options.config && !existsSync(file) && !base) {
        throw new CliError(
          `no ${DEFAULT_CONFIG_FILE} here: pass --config FILE, or --admin URL with --token`,
          EXIT.usage,
        );
      }
      if (existsSync(file) || options.config) {
        const { config, baseDir } = await readAdminSettings(file);
        base ??= listenerOrigin(config.admin.listen);
        if (!token) {
          const tokenFile = config.admin.token_file
            ? resolve(baseDir, config.admin.token_file)
            : resolve(baseDir, config.state_dir, 'admin.token');
          try {
            token = await readTokenFile(tokenFile);
          } catch {
            throw new CliError(
              `cannot read the admin token from ${tokenFile}: is Dayshift started with this config? (or pass --token / DAYSHIFT_TOKEN)`,
              EXIT.unreachable,
            );
          }
        }
      }
    }
    if (!base) throw new CliError('no admin API address: pass --config FILE or --admin URL', EXIT.usage);
    return new AdminClient(base.replace(/\/$/, ''), token);
  }

  async request<T>(method: string, path: string, body?: unknown, init: { signal?: AbortSignal } = {}): Promise<T> {
    const response = await this.fetch(method, path, body, init);
    const text = await response.text();
    if (!response.ok) throw apiError(response.status, errorOf(text));
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Reads a server-sent events stream, calling back per event until it ends. */
  async events(
    path: string,
    onEvent: (event: string, data: unknown) => void,
    init: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const response = await this.fetch('GET', path, undefined, { ...init, accept: 'text/event-stream' });
    if (!response.ok || !response.body) throw apiError(response.status, errorOf(await response.text()));
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) onEvent(event, JSON.parse(data));
      }
    }
  }

  private async fetch(
    method: string,
    path: string,
    body: unknown,
    init: { signal?: AbortSignal; accept?: string },
  ): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          accept: init.accept ?? 'application/json',
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? messageOf(err);
      throw new CliError(
        `cannot reach the admin API at ${this.base} (${cause}): is Dayshift running?`,
        EXIT.unreachable,
      );
    }
  }
}

const adminSettings = z.object({
  admin: z
    .object({ listen: address.default({ host: '127.0.0.1', port: 9900 }), token_file: z.string().optional() })
    .prefault({}),
  state_dir: z.string().default('.dayshift'),
});

/**
 * Reads only what the CLI needs to reach the admin API. The rest of the file is not validated here: it
 * may be the very config a `reload` is about to be refused for.
 */
async function readAdminSettings(file: string): Promise<{ config: z.infer<typeof adminSettings>; baseDir: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : messageOf(err)}`,
      EXIT.usage,
    );
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (err) {
    throw new CliError(
      `${file}: not valid YAML (${messageOf(err).split('\n')[0]}); pass --admin URL and --token instead`,
      EXIT.usage,
    );
  }
  const result = adminSettings.safeParse(parsed ?? {});
  if (!result.success)
    throw new CliError(
      `${file}: cannot read admin.listen / admin.token_file / state_dir: ${result.error.issues[0]?.message}`,
      EXIT.usage,
    );
  return { config: result.data, baseDir: dirname(file) };
}

/** The `error` of a JSON error body; the text itself when it is not one (e.g. a proxy's HTML page). */
function errorOf(text: string): string {
  try {
    const error = (JSON.parse(text) as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error : text;
  } catch {
    return text;
  }
}

function apiError(status: number, message: string): CliError {
  // 429: this address sent too many wrong tokens, so any token is refused for now (exit 5 as documented).
  if (status === 401 || status === 429)
    return new CliError(`the admin API refused the token: ${message}`, EXIT.unreachable);
  // 503: the admin API answers but its store (etcd) does not; nothing was changed (exit 5 as documented).
  if (status === 503) {
    return new CliError(
      `${message}\nThe store is unreachable: Dayshift keeps serving with the state it has, but takes no change until the store answers again. Check etcd, then retry.`,
      EXIT.unreachable,
    );
  }
  if (status === 409) return new CliError(message, EXIT.refused);
  if (status === 400 || status === 404 || status === 422) return new CliError(message, EXIT.usage);
  return new CliError(`${message} (HTTP ${status})`, EXIT.failed);
}
