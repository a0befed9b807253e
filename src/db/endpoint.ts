// The writer endpoint: where database clients send writes. Dayshift's own is the TCP front (`dayshift db
// front`), which follows a small state file; a hook command moves anything else (DNS, ProxySQL, a VIP).
// A flip is verified by connecting through the endpoint and asking the server who it is, because a
// promotion whose endpoint silently did not move leaves the application writing to the old primary.
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { TcpFront } from '../tcp/front.js';
import type { DbServer, DbSettings } from './config.js';
import { DbSession } from './session.js';
import { messageOf } from '../errors.js';

export interface WriterState {
  primary: string;
  host: string;
  port: number;
  at: string;
}

export const writerStatePath = (stateDir: string) => join(stateDir, 'db-writer.json');

export async function readWriterState(stateDir: string): Promise<WriterState | undefined> {
  try {
    return JSON.parse(await readFile(writerStatePath(stateDir), 'utf8')) as WriterState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// Durable, the directory included: a front that restarts after a power cut must follow the new primary,
// not send writes back to the fenced old one.
async function writeWriterState(stateDir: string, server: DbServer): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const state: WriterState = {
    primary: server.name,
    host: server.host,
    port: server.port,
    at: new Date().toISOString(),
  };
  await writeFileAtomic(writerStatePath(stateDir), `${JSON.stringify(state)}\n`);
}

export interface WriterEndpoint {
  /** Sends writers to `next` and away from `previous`; returns what it did, throws when it could not. */
  publish(next: DbServer, previous: DbServer): Promise<string[]>;
}

/** The state file (always), the in-process front (when given) and the hook (when configured). */
export function writerEndpoint(settings: DbSettings, front?: TcpFront): WriterEndpoint {
  return {
    async publish(next, previous) {
      const done: string[] = [];
      await writeWriterState(settings.stateDir, next);
      done.push(`state file → ${next.name}`);
      if (front) {
        front.setTarget({ host: next.host, port: next.port });
        const closed = front.closeConnectionsTo({ host: previous.host, port: previous.port });
        done.push(`front → ${next.name} (${closed} old connection(s) closed)`);
      }
      if (settings.writer.hook) {
        await runHook(settings.writer.hook, next, previous, settings.writer.hook_timeout);
        done.push('hook ok');
      }
      return done;
    },
  };
}

async function runHook(command: string, next: DbServer, previous: DbServer, timeoutMs: number): Promise<void> {
  const env = {
    ...process.env,
    DAYSHIFT_DB_NEW_PRIMARY: next.name,
    DAYSHIFT_DB_NEW_PRIMARY_HOST: next.host,
    DAYSHIFT_DB_NEW_PRIMARY_PORT: String(next.port),
    DAYSHIFT_DB_OLD_PRIMARY: previous.name,
    DAYSHIFT_DB_OLD_PRIMARY_HOST: previous.host,
    DAYSHIFT_DB_OLD_PRIMARY_PORT: String(previous.port),
  };
  const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  });
  if (code !== 0)
    throw new Error(
      `writer hook ${signal ? `killed by ${signal}` : `exited with ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ''}`,
    );
}

/** Address that reaches the writer endpoint, or undefined when none is configured. */
export function verifyAddress(settings: DbSettings): { host: string; port: number } | undefined {
  const address = settings.writer.verify ?? settings.writer.listen;
  if (!address) return undefined;
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  return { host, port: address.port };
}

/**
 * Connects through the endpoint until the server answering is `expected` (by @@server_id), within
 * writer.verify_timeout. Returns a note, or throws naming who answered instead.
 */
export async function verifyWriter(
  settings: DbSettings,
  expected: DbServer,
  expectedServerId: number,
): Promise<string> {
  const via = verifyAddress(settings);
  if (!via) return 'not verified: set database.writer.listen or database.writer.verify';
  const deadline = Date.now() + settings.writer.verify_timeout;
  let last = 'no answer';
  while (true) {
    let session: DbSession | undefined;
    try {
      session = await DbSession.open(expected, {
        connectTimeout: settings.connect_timeout,
        statementTimeout: settings.statement_timeout,
        via,
      });
      if (session.serverId === expectedServerId)
        return `verified: ${via.host}:${via.port} reaches ${expected.name} (server_id ${expectedServerId})`;
      last = `server_id ${session.serverId} answered`;
    } catch (err) {
      last = messageOf(err);
    } finally {
      await session?.close();
    }
    if (Date.now() >= deadline)
      throw new Error(
        `writer endpoint ${via.host}:${via.port} does not reach ${expected.name} (server_id ${expectedServerId}): ${last}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Keeps a front pointed at the primary named in the state file (checked every 100 ms): on a change,
 * new connections go to the new primary and those to the old one are closed.
 */
export function followWriterState(
  settings: DbSettings,
  front: TcpFront,
  onChange?: (state: WriterState) => void,
): () => void {
  let current = front.currentTarget();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    readWriterState(settings.stateDir)
      .then((state) => {
        if (!state || (state.host === current.host && state.port === current.port)) return;
        const previous = current;
        current = { host: state.host, port: state.port };
        front.setTarget(current);
        front.closeConnectionsTo(previous);
        onChange?.(state);
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, 100);
  return () => clearInterval(timer);
}
