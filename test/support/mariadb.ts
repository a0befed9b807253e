// Two real MariaDB servers (Debian mariadb-server) for the switchover tests: own datadirs in a mkdtemp
// directory, loopback ports chosen at run time, unix sockets in that directory, GTID replication a → b.
// The setup accounts are the ones docs/database.md recommends: `switcher` has only the switchover
// grants, `repl` only REPLICATION SLAVE, `app` only DML on appdb.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { databaseSchema } from '../../src/config/database-schema.js';
import { parseYamlWith } from '../../src/config/load.js';
import { resolveDbSettings, type DbSettings } from '../../src/db/config.js';
import type { TestContext } from 'node:test';
import { findExecutable, requirePeer } from './peers.js';
import { waitFor } from './process.js';
import { freePort } from '../../src/ports.js';
import { messageOf } from '../../src/errors.js';

export const USERS = {
  tool: { user: 'switcher', password: 'switcher-pw' },
  repl: { user: 'repl', password: 'repl-pw' },
  app: { user: 'app', password: 'app-pw' },
} as const;

export interface MariaDb {
  name: string;
  host: string;
  port: number;
  serverId: number;
  socket: string;
  /** A root connection over the unix socket (the caller closes it). */
  root(): Promise<Connection>;
  /** Runs statements as root, one call each, and returns the rows of the last. */
  sql(...statements: string[]): Promise<RowDataPacket[]>;
}

export interface MariaDbPair {
  a: MariaDb;
  b: MariaDb;
  dir: string;
  /** Restores a primary / b replica of a, writable / read-only, replication running without delay. */
  heal(): Promise<void>;
  /**
   * Stops one server (SIGTERM, as systemd does) and starts it again on its datadir. With `cnf`, the
   * server also reads that option file (`[mariadbd]` settings such as read_only=ON), as from my.cnf.
   */
  restart(db: MariaDb, options?: { cnf?: string }): Promise<void>;
  stop(): Promise<void>;
}

function server(name: string, dir: string, port: number, serverId: number): MariaDb {
  const socket = join(dir, 'mysqld.sock');
  const root = () => createConnection({ socketPath: socket, user: 'root', multipleStatements: false });
  return {
    name,
    host: '127.0.0.1',
    port,
    serverId,
    socket,
    root,
    async sql(...statements) {
      const conn = await root();
      try {
        let rows: RowDataPacket[] = [];
        for (const statement of statements)
          [rows] = (await conn.query<RowDataPacket[]>(statement)) as [RowDataPacket[], unknown];
        return rows;
      } finally {
        await conn.end();
      }
    },
  };
}

/** The executables a pair runs, both from the Debian package mariadb-server. */
const SERVER_BINARIES = ['mariadbd', 'mariadb-install-db'] as const;

/** Starts the pair, or returns undefined when a server binary is missing (pairFor then skips the test). */
export async function startMariaDbPair(): Promise<MariaDbPair | undefined> {
  const [mariadbd, installDb] = SERVER_BINARIES.map((name) => findExecutable(name));
  if (!mariadbd || !installDb) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-mariadb-'));
  const children = new Map<string, ChildProcess>();
  const stop = async () => {
    await Promise.all(
      [...children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // One install, copied: both servers start from the same empty GTID history.
    const template = join(dir, 'template');
    const install = spawnSync(
      installDb,
      [
        '--no-defaults',
        `--datadir=${template}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--user=root',
      ],
      { encoding: 'utf8' },
    );
    if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`);
    const servers: MariaDb[] = [];
    const launch = async (db: MariaDb, defaults = '--no-defaults') => {
      const { name, port } = db;
      const home = join(dir, name);
      const child = spawn(
        mariadbd,
        [
          defaults,
          '--user=root',
          `--datadir=${join(home, 'data')}`,
          `--socket=${db.socket}`,
          `--pid-file=${join(home, 'mysqld.pid')}`,
          `--log-error=${join(home, 'error.log')}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          '--skip-name-resolve',
          `--server-id=${db.serverId}`,
          '--log-bin=mysql-bin',
          '--relay-log=relay-bin',
          '--binlog-format=ROW',
          '--log-slave-updates=ON',
          '--gtid-strict-mode=ON',
          '--gtid-domain-id=0',
          '--innodb-buffer-pool-size=32M',
          '--innodb-log-file-size=16M',
          '--performance-schema=OFF',
        ],
        { stdio: 'ignore' },
      );
      children.set(name, child);
      await waitFor(
        `mariadbd ${name} on port ${port}`,
        async () => {
          if (child.exitCode !== null)
            throw new Error(`mariadbd ${name} exited with ${child.exitCode}; see its error.log`);
          await db.sql('SELECT 1');
          return true;
        },
        60_000,
      );
    };
    for (const [i, name] of ['a', 'b'].entries()) {
      const home = join(dir, name);
      await cp(template, join(home, 'data'), { recursive: true });
      const db = server(name, home, await freePort(), i + 1);
      await launch(db);
      servers.push(db);
    }
    const [a, b] = servers as [MariaDb, MariaDb];
    await a.sql(
      `CREATE USER ${USERS.repl.user}@'127.0.0.1' IDENTIFIED BY '${USERS.repl.password}'`,
      `GRANT REPLICATION SLAVE ON *.* TO ${USERS.repl.user}@'127.0.0.1'`,
      `CREATE USER ${USERS.app.user}@'127.0.0.1' IDENTIFIED BY '${USERS.app.password}'`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON appdb.* TO ${USERS.app.user}@'127.0.0.1'`,
      `CREATE USER ${USERS.tool.user}@'127.0.0.1' IDENTIFIED BY '${USERS.tool.password}'`,
      `GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG MONITOR, CONNECTION ADMIN, PROCESS, RELOAD ON *.* TO ${USERS.tool.user}@'127.0.0.1'`,
      'CREATE DATABASE appdb',
      'CREATE TABLE appdb.writes (id BIGINT NOT NULL PRIMARY KEY, payload VARCHAR(64) NOT NULL) ENGINE=InnoDB',
    );
    await b.sql(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${a.port}, MASTER_USER='${USERS.repl.user}', MASTER_PASSWORD='${USERS.repl.password}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`,
      'START SLAVE',
      'SET GLOBAL read_only=ON',
    );
    const pair: MariaDbPair = {
      a,
      b,
      dir,
      stop,
      async restart(db, options = {}) {
        const child = children.get(db.name)!;
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
        await launch(db, options.cnf === undefined ? '--no-defaults' : `--defaults-file=${options.cnf}`);
      },
      async heal() {
        const [status] = await b.sql('SHOW SLAVE STATUS');
        if (!status || Number(status.Master_Port) !== a.port)
          throw new Error('heal: b no longer replicates from a; a test left the pair switched');
        await b.sql('STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY=0', 'START SLAVE', 'SET GLOBAL read_only=ON');
        await a.sql('SET GLOBAL read_only=OFF');
        await waitForReplica(a, b);
      },
    };
    await waitForReplica(a, b);
    return pair;
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The pair a file started in `before`, for test `t`. Without one, `t` is skipped when a server binary
 * is missing (a failure under CI=true); with every binary there, a missing pair is an error, never a pass.
 */
export function pairFor(t: TestContext, pair: MariaDbPair | undefined): MariaDbPair | undefined {
  if (pair) return pair;
  for (const name of SERVER_BINARIES) if (!requirePeer(t, name, 'mariadb-server')) return undefined;
  throw new Error('the MariaDB pair did not start: see the error of the before hook');
}

/**
 * Waits until `replica` has applied everything `primary` has written, both threads run, and it reports
 * no lag: right after applying, Seconds_Behind_Master can still show the age of the last event, which a
 * following preflight would refuse (max_lag).
 */
export async function waitForReplica(primary: MariaDb, replica: MariaDb): Promise<void> {
  const [row] = await primary.sql('SELECT @@global.gtid_binlog_pos AS pos');
  const pos = String(row!.pos);
  await waitFor(
    `${replica.name} to reach ${pos}`,
    async () => {
      const [status] = await replica.sql('SHOW SLAVE STATUS');
      const [done] = await replica.sql(`SELECT MASTER_GTID_WAIT('${pos}', 1) AS r`);
      const running = status?.Slave_IO_Running === 'Yes' && status.Slave_SQL_Running === 'Yes';
      return running && Number(done!.r) === 0 && Number(status.Seconds_Behind_Master) === 0 ? true : undefined;
    },
    30_000,
  );
}

/** The `database:` section for this pair, as YAML (servers a and b, tool and replication accounts). */
export function databaseYaml(pair: MariaDbPair, extra: Record<string, string | number> = {}): string {
  const lines = ['database:', '  servers:'];
  for (const db of [pair.a, pair.b]) {
    lines.push(
      `    - {name: ${db.name}, host: 127.0.0.1, port: ${db.port}, user: ${USERS.tool.user}, password: ${USERS.tool.password}}`,
    );
  }
  lines.push(`  replication: {user: ${USERS.repl.user}, password: ${USERS.repl.password}}`);
  for (const [key, value] of Object.entries(extra)) lines.push(`  ${key}: ${value}`);
  return `${lines.join('\n')}\n`;
}

export interface Writer {
  /** Ids whose INSERT was acknowledged. */
  acked: number[];
  /** Failed attempts by error code. */
  errors: Map<string, number>;
  /** Longest time between two consecutive acknowledgements: the outage the application saw. */
  maxGapMs(): number;
  stop(): Promise<void>;
}

/**
 * An application writer: autocommit INSERTs into appdb.writes as `app` through host:port (the writer
 * endpoint), one fresh id per attempt, reconnecting after any error. Bounded by maxMs.
 */
export function startWriter(host: string, port: number, maxMs = 60_000): Writer {
  const acked: number[] = [];
  const ackTimes: number[] = [];
  const errors = new Map<string, number>();
  let stopped = false;
  const end = Date.now() + maxMs;
  const loop = (async () => {
    let conn: Connection | undefined;
    let id = 1;
    while (!stopped && Date.now() < end) {
      const attempt = id++;
      try {
        if (!conn) {
          conn = await createConnection({
            host,
            port,
            user: USERS.app.user,
            password: USERS.app.password,
            database: 'appdb',
            connectTimeout: 2000,
          });
          conn.on('error', () => undefined);
        }
        await conn.query({
          sql: 'INSERT INTO writes (id, payload) VALUES (?, ?)',
          values: [attempt, `w${attempt}`],
          timeout: 5000,
        });
        acked.push(attempt);
        ackTimes.push(performance.now());
      } catch (err) {
        const code = (err as { code?: string }).code ?? messageOf(err);
        errors.set(code, (errors.get(code) ?? 0) + 1);
        conn?.destroy();
        conn = undefined;
        // Back off briefly so a refused endpoint is not hammered.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    conn?.destroy();
  })();
  return {
    acked,
    errors,
    maxGapMs: () => ackTimes.slice(1).reduce((max, t, i) => Math.max(max, t - ackTimes[i]!), 0),
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Settings for this pair as `dayshift db` would load them, with extra `database:` keys (YAML values). */
export async function pairSettings(
  pair: MariaDbPair,
  stateDir: string,
  extra: Record<string, string | number> = {},
  yaml = databaseYaml(pair, extra),
): Promise<DbSettings> {
  const parsed = parseYamlWith(
    `state_dir: ${JSON.stringify(stateDir)}\n${yaml}`,
    'test.yaml',
    z.object({ state_dir: z.string(), database: databaseSchema }),
  );
  return resolveDbSettings(parsed, pair.dir);
}
