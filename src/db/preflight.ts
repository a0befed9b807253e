// Preflight: everything the switchover needs to be true, read without changing anything. Each check is
// named and explained so that a refusal says what to fix.
import type { DbServer, DbSettings } from './config.js';
import { globalPrivileges, missingGrants, type ReplicaStatus } from './dialect.js';
import { DbSession, type Row } from './session.js';
import { serverAt } from './status.js';
import { messageOf } from '../errors.js';

export interface PreflightCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ClientSession {
  id: number;
  user: string;
  host: string;
  command: string;
  time: number;
}

export interface PreflightReport {
  checks: PreflightCheck[];
  /** Client sessions on the old primary now: these are killed after the drain. */
  sessions: ClientSession[];
}

const SYSTEM_USERS = "'system user', 'event_scheduler'";
const SYSTEM_COMMANDS = "'Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Killed'";

/** Sessions of applications and people on a server: not ours, not replication, not the server's own. */
export function clientSessionsSql(settings: DbSettings, session: DbSession): string {
  const users = [...new Set([session.server.user, settings.replication.user])]
    .map((u) => `'${u.replace(/'/g, "''")}'`)
    .join(', ');
  return (
    'SELECT ID AS id, USER AS user, HOST AS host, COMMAND AS command, TIME AS time FROM information_schema.PROCESSLIST ' +
    `WHERE ID <> CONNECTION_ID() AND USER NOT IN (${SYSTEM_USERS}, ${users}) AND COMMAND NOT IN (${SYSTEM_COMMANDS})`
  );
}

export function toClientSession(row: Row): ClientSession {
  return {
    id: Number(row.id),
    user: String(row.user),
    host: String(row.host ?? ''),
    command: String(row.command),
    time: Number(row.time ?? 0),
  };
}

/** Open InnoDB transactions of client sessions (the drain waits for these). */
export function openTransactionsSql(settings: DbSettings, session: DbSession): string {
  return `SELECT t.trx_mysql_thread_id AS id FROM information_schema.INNODB_TRX t JOIN (${clientSessionsSql(settings, session)}) c ON c.id = t.trx_mysql_thread_id`;
}

/** Reads the replica's status on `to` and names the configured server it replicates from. */
export async function sourceOf(
  settings: DbSettings,
  to: DbSession,
): Promise<{ status?: ReplicaStatus; from?: DbServer }> {
  const row = await to.row(to.dialect.replicaStatus);
  if (!row) return {};
  const status = to.dialect.parseReplicaStatus(row);
  return { status, from: serverAt(settings, status.sourceHost, status.sourcePort) };
}

export async function preflight(
  settings: DbSettings,
  from: DbSession,
  to: DbSession,
  status: ReplicaStatus,
): Promise<PreflightReport> {
  const checks: PreflightCheck[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  for (const s of [from, to]) {
    const why = s.dialect.unsupported();
    add(`${s.server.name}: version`, why === undefined, why ?? `${s.dialect.version.text}`);
  }
  add('same flavour', from.dialect.flavour === to.dialect.flavour, `${from.dialect.flavour} / ${to.dialect.flavour}`);
  add('distinct server_id', from.serverId !== to.serverId, `${from.serverId} / ${to.serverId}`);
  for (const s of [from, to]) {
    const grants = (await s.rows('SHOW GRANTS')).map((r) => String(Object.values(r)[0]));
    const missing = missingGrants(s.dialect, grants);
    add(
      `${s.server.name}: grants`,
      missing.length === 0,
      missing.length ? `${s.server.user} lacks ${missing.join(', ')} ON *.*` : 'ok',
    );
    const wrong = await s.check(s.dialect.settings);
    add(
      `${s.server.name}: replication settings`,
      wrong.length === 0,
      wrong.join('; ') || 'log_bin, log updates, ROW, GTID',
    );
  }

  // The replication account is only used after the fence: by the old primary to replicate from the new
  // one (reattach), and by the replica to replicate from the old one again (rollback B). A wrong password
  // would surface past the point of no return, so log in with it now, on both.
  for (const s of [to, from]) {
    const [ok, detail] = await replicationLogin(settings, s);
    add(`${s.server.name}: replication account`, ok, detail);
  }

  const fromRo = (await from.row(from.dialect.readOnly)) ?? {};
  const fromReplica = await from.row(from.dialect.replicaStatus);
  add(
    `${from.server.name}: is a writable primary`,
    Number(fromRo.read_only) === 0 && !fromReplica,
    fromReplica ? 'it is itself a replica' : Number(fromRo.read_only) === 1 ? 'read_only is ON' : 'ok',
  );

  const threads = status.ioRunning === 'Yes' && status.sqlRunning === 'Yes';
  add(
    `${to.server.name}: replication running`,
    threads && !status.ioError && !status.sqlError,
    `IO ${status.ioRunning}, SQL ${status.sqlRunning}${status.ioError ? `, IO error ${status.ioError}` : ''}${status.sqlError ? `, SQL error ${status.sqlError}` : ''}`,
  );
  add(`${to.server.name}: replicates by GTID`, status.usingGtid, status.gtidMode);
  // A writable replica takes writes that are not on the primary (errant transactions), and during the
  // switchover it would take writes before it has caught up. SET GLOBAL read_only is lost on a restart.
  const toRo = (await to.row(to.dialect.readOnly)) ?? {};
  add(
    `${to.server.name}: replica is read-only`,
    to.dialect.fenced(toRo),
    to.dialect.fenced(toRo) ? 'yes' : `no, it is writable: ${to.dialect.keepReadOnly}`,
  );
  // Seconds_Behind_Master alone is not enough: it reads 0 whenever the SQL thread has caught up with the
  // relay log, e.g. while a delayed replica (MASTER_DELAY) waits. So the replica must also apply the
  // primary's current position within max_lag.
  const maxLag = settings.max_lag / 1000;
  const primaryPos = String((await from.row(from.dialect.position))?.pos ?? '');
  const applied =
    threads &&
    (await to.check(to.dialect.waitFor(primaryPos, settings.max_lag), settings.max_lag + settings.statement_timeout));
  add(`${to.server.name}: lag`, ...lagCheck(status.lagSeconds, applied, primaryPos, maxLag));

  const toPositions = (await to.row(to.dialect.positions)) ?? {};
  const errantCheck = to.dialect.errant(String(toPositions.executed ?? ''));
  const errant = await (errantCheck.on === 'target' ? to : from).check(errantCheck);
  add(
    `${to.server.name}: no errant transactions`,
    errant === '',
    errant === '' ? 'none' : `${errant} (written on the replica, missing on the primary)`,
  );

  const bound = Math.max(1, Math.ceil(settings.long_transaction / 1000));
  const longTrx = await from.rows(
    `SELECT p.ID AS id, p.USER AS user, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS age FROM information_schema.INNODB_TRX t ` +
      `JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.ID <> CONNECTION_ID() AND t.trx_started <= NOW() - INTERVAL ${bound} SECOND`,
  );
  add(
    `${from.server.name}: no long transactions`,
    longTrx.length === 0,
    longTrx.length
      ? longTrx.map((r) => `session ${String(r.id)} (${String(r.user)}) open ${String(r.age)}s`).join(', ')
      : `none over ${bound}s`,
  );
  const longQueries = await from.rows(
    `SELECT ID AS id, USER AS user, TIME AS time FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND TIME >= ${bound} ` +
      `AND ID <> CONNECTION_ID() AND USER NOT IN (${SYSTEM_USERS})`,
  );
  add(
    `${from.server.name}: no long statements`,
    longQueries.length === 0,
    longQueries.length
      ? longQueries.map((r) => `session ${String(r.id)} (${String(r.user)}) running ${String(r.time)}s`).join(', ')
      : `none over ${bound}s`,
  );

  const sessions = (await from.rows(clientSessionsSql(settings, from))).map(toClientSession);
  return { checks, sessions };
}

/** The lag verdict; a refusal names only what failed, so the reason printed is the real one. */
export function lagCheck(
  lagSeconds: number | null,
  applied: boolean,
  primaryPos: string,
  maxLagSeconds: number,
): [boolean, string] {
  if (lagSeconds === null) return [false, 'unknown (SQL thread not running)'];
  const pos = primaryPos || '(empty)';
  const behind = lagSeconds > maxLagSeconds ? `${lagSeconds}s behind, over max_lag ${maxLagSeconds}s` : undefined;
  const notApplied = applied ? undefined : `did not apply the primary's position ${pos} within ${maxLagSeconds}s`;
  if (behind || notApplied) return [false, [behind, notApplied].filter(Boolean).join('; ')];
  return [true, `${lagSeconds}s behind; applied the primary's position ${pos} within ${maxLagSeconds}s`];
}

/** Logs in to `s`'s server with the replication account, as a replica will, and checks its grant. */
async function replicationLogin(settings: DbSettings, s: DbSession): Promise<[boolean, string]> {
  const { user, password } = settings.replication;
  let session: DbSession | undefined;
  try {
    session = await DbSession.open(
      { ...s.server, user, password },
      {
        connectTimeout: settings.connect_timeout,
        statementTimeout: settings.statement_timeout,
        credentials: 'database.replication',
      },
    );
    const have = globalPrivileges((await session.rows('SHOW GRANTS')).map((r) => String(Object.values(r)[0])));
    if (!have.has('REPLICATION SLAVE') && !have.has('ALL PRIVILEGES'))
      return [false, `${user} lacks REPLICATION SLAVE ON *.* on ${s.server.name}`];
    return [true, `${user} logs in and holds REPLICATION SLAVE`];
  } catch (err) {
    return [false, messageOf(err)];
  } finally {
    await session?.close();
  }
}
