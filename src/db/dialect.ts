// Every statement that differs between MariaDB and MySQL 8 lives here and nowhere else. The switchover
// speaks to a Dialect; MariaDB is tested against real servers, MySQL by the unit tests of this file
// (statement text from the MySQL 8.0/8.4 reference manual; MySQL 8.4 removed the SLAVE/MASTER syntax).
import { escape } from 'mysql2';

export type Flavour = 'mariadb' | 'mysql';

export interface ServerVersion {
  flavour: Flavour;
  major: number;
  minor: number;
  patch: number;
  /** As the server reports it (@@version). */
  text: string;
}

/** Reads the flavour and version from @@version ("10.11.19-MariaDB-0+deb12u1", "8.0.36"). */
export function parseVersion(version: string): ServerVersion {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) throw new Error(`unrecognised server version "${version}"`);
  return {
    flavour: /mariadb/i.test(version) ? 'mariadb' : 'mysql',
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3]),
    text: version,
  };
}

/** SHOW SLAVE/REPLICA STATUS, with the flavour's column names normalised. */
export interface ReplicaStatus {
  sourceHost: string;
  sourcePort: number;
  /** "Yes", "No" or "Connecting". */
  ioRunning: string;
  sqlRunning: string;
  /** Null when the SQL thread is not running (the server cannot tell). */
  lagSeconds: number | null;
  /** True when the replica positions itself by GTID (MariaDB Using_Gtid=Slave_Pos/Current_Pos, MySQL Auto_Position=1). */
  usingGtid: boolean;
  /** Using_Gtid / Auto_Position as reported. */
  gtidMode: string;
  ioError: string;
  sqlError: string;
}

export interface Source {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** A statement whose result decides something, with the decision next to it. */
export interface Check<T> {
  sql: string;
  read(row: Record<string, unknown>): T;
}

export interface Dialect {
  readonly flavour: Flavour;
  readonly version: ServerVersion;
  /** Why this version cannot be switched over, or undefined. */
  unsupported(): string | undefined;
  readonly replicaStatus: string;
  parseReplicaStatus(row: Record<string, unknown>): ReplicaStatus;
  readonly stopReplica: string;
  readonly startReplica: string;
  /**
   * Points this server at a source by GTID. `demote` is for a server that was a primary until now: its
   * own writes must count as applied (MariaDB MASTER_DEMOTE_TO_SLAVE; MySQL's auto-position needs nothing).
   */
  changeSource(source: Source, demote: boolean): string;
  /** Turns a caught-up replica into a writable primary, one statement per call. */
  readonly promote: string[];
  /** Everything this server has in its binlog (the position a replica must reach). Column `pos`. */
  readonly position: string;
  /** GTID positions for status output. Columns `executed` and `applied`. */
  readonly positions: string;
  /** Waits on a replica until it has applied `pos`; `read` is true when reached, false on timeout. */
  waitFor(pos: string, timeoutMs: number): Check<boolean>;
  /** Whether a replica has applied `pos` (checked again after the wait). */
  reached(pos: string): Check<boolean>;
  /** Whether everything this server has written or applied is within `pos` (nothing new since). */
  within(pos: string): Check<boolean>;
  /**
   * Transactions the would-be primary has that its primary lacks (text, empty = none). `on` says which
   * server runs it; `targetExecuted` is the would-be primary's `positions.executed`, read before this.
   */
  errant(targetExecuted: string): Check<string> & { on: 'target' | 'primary' };
  /** Statements that make the server refuse writes from everyone the flavour can refuse. */
  readonly fence: string[];
  readonly unfence: string[];
  /** Columns `read_only` (0/1) and `super_read_only` (0/1, always 0 on MariaDB). */
  readonly readOnly: string;
  /** Whether a `readOnly` row shows the server closed to writes as far as the flavour can close it. */
  fenced(row: Record<string, unknown>): boolean;
  /** How to make a replica read-only now and after a restart (read_only set with SET GLOBAL is lost then). */
  readonly keepReadOnly: string;
  /** lock_wait_timeout for this session; SET GLOBAL read_only waits this long behind running writes. */
  lockWait(ms: number): string;
  /** Replication settings; `read` lists what is wrong for a GTID switchover. */
  readonly settings: Check<string[]>;
  /** Privileges the switchover account needs on *.*, each with the privileges that also satisfy it. */
  readonly grants: { need: string; alsoBy: string[] }[];
}

const yesNo = (value: unknown) => (value === null || value === undefined ? 'No' : String(value));
const num = (value: unknown) => (value === null || value === undefined || value === '' ? null : Number(value));
const str = (value: unknown) => (value === null || value === undefined ? '' : String(value));
const errorText = (errno: unknown, message: unknown) =>
  Number(errno ?? 0) === 0 ? '' : `${String(errno)}: ${str(message)}`;
const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
const flag = (value: unknown) => value === 1 || value === '1' || value === 'ON' || value === 'on';

function changeSourceClauses(
  source: Source,
  names: { host: string; port: string; user: string; password: string; retry: string },
): string {
  // CHANGE MASTER cannot be prepared with placeholders (mysql2 execute() → 1064), so values are escaped
  // here; host and port are already restricted by the config schema.
  return [
    `${names.host}=${escape(source.host)}`,
    `${names.port}=${Math.trunc(source.port)}`,
    `${names.user}=${escape(source.user)}`,
    `${names.password}=${escape(source.password)}`,
    `${names.retry}=1`,
  ].join(', ');
}

class MariaDbDialect implements Dialect {
  readonly flavour = 'mariadb' as const;
  constructor(readonly version: ServerVersion) {}
  unsupported(): string | undefined {
    const { major, minor } = this.version;
    // MASTER_DEMOTE_TO_SLAVE (10.10) is what re-attaches an old primary without a stale position.
    if (major < 10 || (major === 10 && minor < 10))
      return `MariaDB ${major}.${minor} is too old: MASTER_DEMOTE_TO_SLAVE needs 10.10 or later`;
    return undefined;
  }
  readonly replicaStatus = 'SHOW SLAVE STATUS';
  parseReplicaStatus(row: Record<string, unknown>): ReplicaStatus {
    const gtidMode = str(row.Using_Gtid);
    return {
      sourceHost: str(row.Master_Host),
      sourcePort: Number(row.Master_Port ?? 0),
      ioRunning: yesNo(row.Slave_IO_Running),
      sqlRunning: yesNo(row.Slave_SQL_Running),
      lagSeconds: num(row.Seconds_Behind_Master),
      usingGtid: gtidMode === 'Slave_Pos' || gtidMode === 'Current_Pos',
      gtidMode: gtidMode || 'No',
      ioError: errorText(row.Last_IO_Errno, row.Last_IO_Error),
      sqlError: errorText(row.Last_SQL_Errno, row.Last_SQL_Error),
    };
  }
  readonly stopReplica = 'STOP SLAVE';
  readonly startReplica = 'START SLAVE';
  changeSource(source: Source, demote: boolean): string {
    const clauses = changeSourceClauses(source, {
      host: 'MASTER_HOST',
      port: 'MASTER_PORT',
      user: 'MASTER_USER',
      password: 'MASTER_PASSWORD',
      retry: 'MASTER_CONNECT_RETRY',
    });
    // slave_pos alone would resume an old primary from its stale gtid_slave_pos (error 1236 once the
    // binlogs are purged); DEMOTE copies its own writes into gtid_slave_pos first.
    return `CHANGE MASTER TO ${clauses}, MASTER_USE_GTID=slave_pos${demote ? ', MASTER_DEMOTE_TO_SLAVE=1' : ''}`;
  }
  readonly promote = ['STOP SLAVE', 'RESET SLAVE ALL', 'SET GLOBAL read_only=OFF'];
  readonly position = 'SELECT @@global.gtid_binlog_pos AS pos';
  readonly positions = 'SELECT @@global.gtid_binlog_pos AS executed, @@global.gtid_slave_pos AS applied';
  waitFor(pos: string, timeoutMs: number): Check<boolean> {
    // A NULL or negative timeout waits forever, so the timeout is always a positive literal.
    const timeout = Math.max(0.001, timeoutMs / 1000).toFixed(3);
    return { sql: `SELECT MASTER_GTID_WAIT(${escape(pos)}, ${timeout}) AS r`, read: (row) => Number(row.r) === 0 };
  }
  reached(pos: string): Check<boolean> {
    return { sql: 'SELECT @@global.gtid_slave_pos AS applied', read: (row) => mariaDbCovers(str(row.applied), pos) };
  }
  within(pos: string): Check<boolean> {
    return { sql: 'SELECT @@global.gtid_binlog_pos AS pos', read: (row) => mariaDbCovers(pos, str(row.pos)) };
  }
  errant(): Check<string> & { on: 'target' } {
    // With log_slave_updates every replicated event is in the binlog too, so a GTID in gtid_binlog_pos
    // beyond gtid_slave_pos that carries this server's own server_id was written locally. One with
    // another server's id is a replicated transaction being committed right now: the binlog position
    // moves before gtid_slave_pos does, so it is not an errant write.
    return {
      on: 'target',
      sql: 'SELECT @@global.gtid_binlog_pos AS executed, @@global.gtid_slave_pos AS applied, @@global.server_id AS server_id',
      read: (row) => {
        const local = mariaDbWrittenLocally(str(row.executed), str(row.applied), str(row.server_id));
        return local === ''
          ? ''
          : `gtid_binlog_pos ${local} is ahead of gtid_slave_pos ${str(row.applied) || '(empty)'}`;
      },
    };
  }
  // MariaDB has no super_read_only; READ_ONLY ADMIN holders still write, hence the session kill.
  readonly fence = ['SET GLOBAL read_only=ON'];
  readonly unfence = ['SET GLOBAL read_only=OFF'];
  readonly readOnly = 'SELECT @@global.read_only AS read_only, 0 AS super_read_only';
  fenced(row: Record<string, unknown>): boolean {
    return flag(row.read_only);
  }
  // MariaDB has no SET PERSIST: only the option file survives a restart.
  readonly keepReadOnly =
    'run SET GLOBAL read_only=ON on it, and put read_only=ON under [mariadbd] in its my.cnf so that a restart keeps it';
  lockWait(ms: number): string {
    // Inlined: a bound number is sent as DOUBLE and refused (1232).
    return `SET SESSION lock_wait_timeout=${seconds(ms)}`;
  }
  readonly settings: Check<string[]> = {
    sql: 'SELECT @@log_bin AS log_bin, @@log_slave_updates AS log_updates, @@binlog_format AS binlog_format, @@gtid_strict_mode AS gtid_strict_mode',
    read: (row) => {
      const wrong: string[] = [];
      if (!flag(row.log_bin)) wrong.push('log_bin is off');
      if (!flag(row.log_updates))
        wrong.push('log_slave_updates is off (the old primary could not find its position in the new one)');
      if (str(row.binlog_format).toUpperCase() !== 'ROW')
        wrong.push(`binlog_format is ${str(row.binlog_format)}, expected ROW`);
      if (!flag(row.gtid_strict_mode)) wrong.push('gtid_strict_mode is off');
      return wrong;
    },
  };
  readonly grants = [
    { need: 'READ_ONLY ADMIN', alsoBy: ['ALL PRIVILEGES'] },
    { need: 'REPLICATION SLAVE ADMIN', alsoBy: ['ALL PRIVILEGES'] },
    { need: 'SLAVE MONITOR', alsoBy: ['ALL PRIVILEGES'] },
    { need: 'CONNECTION ADMIN', alsoBy: ['ALL PRIVILEGES'] },
    { need: 'PROCESS', alsoBy: ['ALL PRIVILEGES'] },
    // RESET SLAVE ALL needs RELOAD.
    { need: 'RELOAD', alsoBy: ['ALL PRIVILEGES'] },
  ];
}

class MySqlDialect implements Dialect {
  readonly flavour = 'mysql' as const;
  constructor(readonly version: ServerVersion) {}
  unsupported(): string | undefined {
    const { major, minor, patch } = this.version;
    // CHANGE REPLICATION SOURCE TO exists from 8.0.23 and log_replica_updates from 8.0.26; only the
    // REPLICA/SOURCE syntax survives in 8.4.
    if (major < 8 || (major === 8 && minor === 0 && patch < 26))
      return `MySQL ${major}.${minor}.${patch} is too old: 8.0.26 or later is needed`;
    return undefined;
  }
  readonly replicaStatus = 'SHOW REPLICA STATUS';
  parseReplicaStatus(row: Record<string, unknown>): ReplicaStatus {
    const auto = str(row.Auto_Position);
    return {
      sourceHost: str(row.Source_Host),
      sourcePort: Number(row.Source_Port ?? 0),
      ioRunning: yesNo(row.Replica_IO_Running),
      sqlRunning: yesNo(row.Replica_SQL_Running),
      lagSeconds: num(row.Seconds_Behind_Source),
      usingGtid: auto === '1',
      gtidMode: auto === '1' ? 'Auto_Position' : 'No',
      ioError: errorText(row.Last_IO_Errno, row.Last_IO_Error),
      sqlError: errorText(row.Last_SQL_Errno, row.Last_SQL_Error),
    };
  }
  readonly stopReplica = 'STOP REPLICA';
  readonly startReplica = 'START REPLICA';
  changeSource(source: Source): string {
    const clauses = changeSourceClauses(source, {
      host: 'SOURCE_HOST',
      port: 'SOURCE_PORT',
      user: 'SOURCE_USER',
      password: 'SOURCE_PASSWORD',
      retry: 'SOURCE_CONNECT_RETRY',
    });
    // GET_SOURCE_PUBLIC_KEY lets a caching_sha2_password replication account connect without TLS.
    return `CHANGE REPLICATION SOURCE TO ${clauses}, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1`;
  }
  // super_read_only goes first so that RESET REPLICA ALL can update the replication metadata tables,
  // while read_only still keeps application users out until the last statement.
  readonly promote = [
    'STOP REPLICA',
    'SET PERSIST super_read_only=OFF',
    'RESET REPLICA ALL',
    'SET PERSIST read_only=OFF',
  ];
  readonly position = 'SELECT @@global.gtid_executed AS pos';
  readonly positions = 'SELECT @@global.gtid_executed AS executed, @@global.gtid_executed AS applied';
  waitFor(pos: string, timeoutMs: number): Check<boolean> {
    const timeout = Math.max(0.001, timeoutMs / 1000).toFixed(3);
    return {
      sql: `SELECT WAIT_FOR_EXECUTED_GTID_SET(${escape(pos)}, ${timeout}) AS r`,
      read: (row) => Number(row.r) === 0,
    };
  }
  reached(pos: string): Check<boolean> {
    return {
      sql: `SELECT GTID_SUBSET(${escape(pos)}, @@global.gtid_executed) AS ok`,
      read: (row) => Number(row.ok) === 1,
    };
  }
  within(pos: string): Check<boolean> {
    return {
      sql: `SELECT GTID_SUBSET(@@global.gtid_executed, ${escape(pos)}) AS ok`,
      read: (row) => Number(row.ok) === 1,
    };
  }
  errant(targetExecuted: string): Check<string> & { on: 'primary' } {
    // Run on the primary after reading the replica's set: the primary's set can only have grown since,
    // so anything left over really is the replica's own.
    return {
      on: 'primary',
      sql: `SELECT GTID_SUBTRACT(${escape(targetExecuted)}, @@global.gtid_executed) AS errant`,
      read: (row) => str(row.errant).replace(/\s+/g, ''),
    };
  }
  // super_read_only also stops SUPER/CONNECTION_ADMIN users and implies read_only; OFF must be undone in
  // that order (read_only=OFF alone is refused while super_read_only is ON). SET PERSIST (8.0+, needs only
  // SYSTEM_VARIABLES_ADMIN for these dynamic variables) also writes mysqld-auto.cnf, which is read after
  // my.cnf: a restarted server keeps the role the switchover gave it.
  readonly fence = ['SET PERSIST super_read_only=ON'];
  readonly unfence = ['SET PERSIST super_read_only=OFF', 'SET PERSIST read_only=OFF'];
  readonly readOnly = 'SELECT @@global.read_only AS read_only, @@global.super_read_only AS super_read_only';
  fenced(row: Record<string, unknown>): boolean {
    return flag(row.super_read_only);
  }
  readonly keepReadOnly = 'run SET PERSIST super_read_only=ON on it (kept in mysqld-auto.cnf across restarts)';
  lockWait(ms: number): string {
    return `SET SESSION lock_wait_timeout=${seconds(ms)}`;
  }
  readonly settings: Check<string[]> = {
    sql: 'SELECT @@log_bin AS log_bin, @@log_replica_updates AS log_updates, @@binlog_format AS binlog_format, @@gtid_mode AS gtid_mode, @@enforce_gtid_consistency AS enforce_gtid_consistency',
    read: (row) => {
      const wrong: string[] = [];
      if (!flag(row.log_bin)) wrong.push('log_bin is off');
      if (!flag(row.log_updates)) wrong.push('log_replica_updates is off');
      if (str(row.binlog_format).toUpperCase() !== 'ROW')
        wrong.push(`binlog_format is ${str(row.binlog_format)}, expected ROW`);
      if (str(row.gtid_mode).toUpperCase() !== 'ON') wrong.push(`gtid_mode is ${str(row.gtid_mode)}, expected ON`);
      if (!flag(row.enforce_gtid_consistency)) wrong.push('enforce_gtid_consistency is off');
      return wrong;
    },
  };
  readonly grants = [
    { need: 'SYSTEM_VARIABLES_ADMIN', alsoBy: ['SUPER', 'ALL PRIVILEGES'] },
    { need: 'REPLICATION_SLAVE_ADMIN', alsoBy: ['SUPER', 'ALL PRIVILEGES'] },
    { need: 'REPLICATION CLIENT', alsoBy: ['ALL PRIVILEGES'] },
    { need: 'CONNECTION_ADMIN', alsoBy: ['SUPER', 'ALL PRIVILEGES'] },
    { need: 'PROCESS', alsoBy: ['ALL PRIVILEGES'] },
    { need: 'RELOAD', alsoBy: ['ALL PRIVILEGES'] },
  ];
}

export function dialectFor(version: ServerVersion): Dialect {
  return version.flavour === 'mariadb' ? new MariaDbDialect(version) : new MySqlDialect(version);
}

interface MariaDbGtid {
  /** The GTID as written, e.g. "0-1-100". */
  text: string;
  domain: string;
  server: string;
  /** Text: each caller converts it with BigInt only where it compares it, so a GTID it skips never throws. */
  seq: string;
}

/** The GTIDs of a MariaDB GTID position "0-1-100,1-2-7", in order, each checked as it is reached. */
function* mariaDbGtids(pos: string): Generator<MariaDbGtid> {
  for (const text of pos
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [domain, server, seq] = text.split('-');
    if (domain === undefined || server === undefined || seq === undefined)
      throw new Error(`malformed GTID position "${pos}"`);
    yield { text, domain, server, seq };
  }
}

/** MariaDB GTID position "0-1-100,1-2-7" as domain → seq. */
function parseMariaDbPos(pos: string): Map<string, bigint> {
  const map = new Map<string, bigint>();
  for (const gtid of mariaDbGtids(pos)) map.set(gtid.domain, BigInt(gtid.seq));
  return map;
}

/** The GTIDs of `executed` written by `serverId` and past `applied` in their domain (comma-separated). */
export function mariaDbWrittenLocally(executed: string, applied: string, serverId: string): string {
  const have = parseMariaDbPos(applied);
  const local: string[] = [];
  for (const gtid of mariaDbGtids(executed)) {
    const got = have.get(gtid.domain);
    if (gtid.server === serverId && (got === undefined || got < BigInt(gtid.seq))) local.push(gtid.text);
  }
  return local.join(',');
}

/** Whether `have` is at or past `want` in every replication domain of `want`. */
export function mariaDbCovers(have: string, want: string): boolean {
  const h = parseMariaDbPos(have);
  for (const [domain, seq] of parseMariaDbPos(want)) {
    const got = h.get(domain);
    if (got === undefined || got < seq) return false;
  }
  return true;
}

/** Privileges granted ON *.* in SHOW GRANTS output, upper-cased. */
export function globalPrivileges(grantLines: string[]): Set<string> {
  const privileges = new Set<string>();
  for (const line of grantLines) {
    const match = /^GRANT (.+?) ON \*\.\* TO /i.exec(line);
    if (!match) continue;
    for (const p of match[1]!.split(',')) privileges.add(p.trim().toUpperCase());
  }
  return privileges;
}

/** Required privileges the grants lack (empty = enough). */
export function missingGrants(dialect: Dialect, grantLines: string[]): string[] {
  const have = globalPrivileges(grantLines);
  return dialect.grants.filter((g) => !have.has(g.need) && !g.alsoBy.some((p) => have.has(p))).map((g) => g.need);
}
