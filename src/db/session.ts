// One dedicated connection per server for the whole switchover (a pool could run the next statement
// on another connection and lose session state such as lock_wait_timeout). Every statement has a
// client-side timeout on top of the server-side ones.
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { DbServer } from './config.js';
import { dialectFor, parseVersion, type Check, type Dialect } from './dialect.js';
import { messageOf } from '../errors.js';
import { DbConnectError } from './errors.js';

export type Row = Record<string, unknown>;

export interface SessionOptions {
  connectTimeout: number;
  statementTimeout: number;
  /** Connect here instead of the server's own address (used to check the writer endpoint). */
  via?: { host: string; port: number };
  /** Where the account's user and password are configured, for the hint when the login is refused. */
  credentials?: string;
}

/** Passwords in CHANGE MASTER/REPLICATION SOURCE statements, masked for printing. */
export function maskSql(sql: string): string {
  return sql.replace(/(PASSWORD=)'(?:[^'\\]|\\.)*'/gi, "$1'***'");
}

export class DbSession {
  private constructor(
    readonly server: DbServer,
    private readonly conn: Connection,
    readonly dialect: Dialect,
    readonly serverId: number,
    readonly connectionId: number,
    private readonly statementTimeout: number,
  ) {}

  static async open(server: DbServer, options: SessionOptions): Promise<DbSession> {
    let conn: Connection;
    try {
      conn = await createConnection({
        host: options.via?.host ?? server.host,
        port: options.via?.port ?? server.port,
        user: server.user,
        password: server.password,
        connectTimeout: options.connectTimeout,
        multipleStatements: false,
        supportBigNumbers: true,
        bigNumberStrings: true,
      });
    } catch (err) {
      throw new DbConnectError({
        server,
        reason: messageOf(err) || String((err as { code?: string }).code),
        via: options.via,
        credentials: options.credentials,
        cause: err,
      });
    }
    // A killed or dropped connection reports through 'error'; the pending statement rejects anyway.
    conn.on('error', () => undefined);
    try {
      const [rows] = await conn.query<RowDataPacket[]>({
        sql: 'SELECT @@version AS version, @@server_id AS server_id, CONNECTION_ID() AS id',
        timeout: options.statementTimeout,
      });
      const row = rows[0]!;
      return new DbSession(
        server,
        conn,
        dialectFor(parseVersion(String(row.version))),
        Number(row.server_id),
        Number(row.id),
        options.statementTimeout,
      );
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  async rows(sql: string, timeoutMs = this.statementTimeout): Promise<Row[]> {
    const [rows] = await this.conn.query<RowDataPacket[]>({ sql, timeout: timeoutMs });
    return Array.isArray(rows) ? (rows as Row[]) : [];
  }

  async row(sql: string, timeoutMs?: number): Promise<Row | undefined> {
    return (await this.rows(sql, timeoutMs))[0];
  }

  async run(sql: string, timeoutMs = this.statementTimeout): Promise<void> {
    await this.conn.query({ sql, timeout: timeoutMs });
  }

  async check<T>(check: Check<T>, timeoutMs?: number): Promise<T> {
    return check.read((await this.row(check.sql, timeoutMs)) ?? {});
  }

  async close(): Promise<void> {
    try {
      await this.conn.end();
    } catch {
      this.conn.destroy();
    }
  }
}
