// `dayshift db` reads only the `database` section (and state_dir) of the configuration file, so a file
// holding just the database servers works as well as the full proxy configuration.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { databaseSchema, type DatabaseConfig } from '../config/database-schema.js';
import { parseYamlWith, readConfigSource } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import type { DayshiftConfig } from '../config/schema.js';
import { messageOf } from '../errors.js';

const dbFileSchema = z.object({
  state_dir: z.string().default('.dayshift'),
  database: databaseSchema,
});

/** A server with its password read (from password_file if that is how it was given). */
export interface DbServer {
  name: string;
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface DbSettings extends Omit<DatabaseConfig, 'servers' | 'replication'> {
  servers: DbServer[];
  replication: { user: string; password: string };
  /** Absolute directory for the switchover lock, journal and writer state. */
  stateDir: string;
}

export async function loadDbSettings(file: string): Promise<DbSettings> {
  const { absolute, source } = await readConfigSource(file);
  return resolveDbSettings(parseYamlWith(source, absolute, dbFileSchema), dirname(absolute), absolute);
}

/** Turns a parsed section into settings: reads password files relative to baseDir. */
export async function resolveDbSettings(
  parsed: { state_dir: string; database: DatabaseConfig },
  baseDir: string,
  file = '<inline>',
): Promise<DbSettings> {
  const db = parsed.database;
  const secret = async (value: { password?: string | undefined; password_file?: string | undefined }, path: string) => {
    if (value.password_file === undefined) return value.password ?? '';
    try {
      return (await readFile(resolve(baseDir, value.password_file), 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError([
        { file, line: 0, column: 0, path, message: `cannot read password_file: ${messageOf(err)}` },
      ]);
    }
  };
  const servers = await Promise.all(
    db.servers.map(async (s, i) => ({
      name: s.name,
      host: s.host,
      port: s.port,
      user: s.user,
      password: await secret(s, `database.servers[${i}].password_file`),
    })),
  );
  const replication = {
    user: db.replication.user,
    password: await secret(db.replication, 'database.replication.password_file'),
  };
  const { servers: _s, replication: _r, ...rest } = db;
  return { ...rest, servers, replication, stateDir: resolve(baseDir, parsed.state_dir) };
}

/** host:port as clients write it (IPv6 in brackets). */
export function serverAddress(server: { host: string; port: number }): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export function findServer(settings: DbSettings, name: string): DbServer {
  const server = settings.servers.find((s) => s.name === name);
  if (!server)
    throw new Error(`unknown server "${name}"; configured servers: ${settings.servers.map((s) => s.name).join(', ')}`);
  return server;
}

/** For callers holding the full configuration (the release conductor): its `database` section as settings. */
export async function dbSettingsFromConfig(
  config: DayshiftConfig,
  baseDir: string,
  file = '<inline>',
): Promise<DbSettings> {
  if (!config.database)
    throw new ConfigError([
      {
        file,
        line: 0,
        column: 0,
        path: 'database',
        message: 'no database section: add database.servers and database.replication',
      },
    ]);
  return resolveDbSettings({ state_dir: config.state_dir, database: config.database }, baseDir, file);
}
