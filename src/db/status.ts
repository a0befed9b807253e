// `dayshift db status`: what each configured server is right now, read from the servers themselves.
import { serverAddress, type DbServer, type DbSettings } from './config.js';
import type { Flavour, ReplicaStatus } from './dialect.js';
import { DbSession } from './session.js';
import { DbConnectError } from './errors.js';
import { messageOf } from '../errors.js';

export { serverAddress };

export type Role = 'primary' | 'replica' | 'read-only' | 'unreachable';

export interface ServerStatus {
  name: string;
  address: string;
  role: Role;
  /** For a replica: the configured server it replicates from, or host:port when it is not one of them. */
  replicaOf?: string;
  flavour?: Flavour;
  version?: string;
  serverId?: number;
  readOnly?: boolean;
  superReadOnly?: boolean;
  /** GTIDs in the binlog (MariaDB gtid_binlog_pos, MySQL gtid_executed). */
  executed?: string;
  /** GTIDs applied by replication (MariaDB gtid_slave_pos). */
  applied?: string;
  replication?: ReplicaStatus;
  /** What an operator should fix, e.g. a replica that takes writes. */
  warnings?: string[];
  error?: string;
}

/** The configured server at host:port, matched as written in the config. */
export function serverAt(settings: DbSettings, host: string, port: number): DbServer | undefined {
  return settings.servers.find((s) => s.host === host && s.port === port);
}

export async function readStatus(settings: DbSettings, session: DbSession): Promise<ServerStatus> {
  const { dialect } = session;
  const ro = (await session.row(dialect.readOnly)) ?? {};
  const positions = (await session.row(dialect.positions)) ?? {};
  const replicaRow = await session.row(dialect.replicaStatus);
  const replication = replicaRow ? dialect.parseReplicaStatus(replicaRow) : undefined;
  const readOnly = Number(ro.read_only) === 1;
  const status: ServerStatus = {
    name: session.server.name,
    address: serverAddress(session.server),
    role: replication ? 'replica' : readOnly ? 'read-only' : 'primary',
    flavour: dialect.flavour,
    version: dialect.version.text,
    serverId: session.serverId,
    readOnly,
    superReadOnly: Number(ro.super_read_only) === 1,
    executed: String(positions.executed ?? ''),
    applied: String(positions.applied ?? ''),
  };
  if (replication) {
    status.replication = replication;
    status.replicaOf =
      serverAt(settings, replication.sourceHost, replication.sourcePort)?.name ??
      serverAddress({ host: replication.sourceHost, port: replication.sourcePort });
    // E.g. restarted after a switchover that set read_only with SET GLOBAL only.
    if (!dialect.fenced(ro)) status.warnings = [`${status.name} is a replica but writable: ${dialect.keepReadOnly}`];
  }
  return status;
}

export async function dbStatus(settings: DbSettings): Promise<ServerStatus[]> {
  return Promise.all(
    settings.servers.map(async (server): Promise<ServerStatus> => {
      let session: DbSession | undefined;
      try {
        session = await DbSession.open(server, {
          connectTimeout: settings.connect_timeout,
          statementTimeout: settings.statement_timeout,
        });
        return await readStatus(settings, session);
      } catch (err) {
        // The row names the server and its address already.
        return {
          name: server.name,
          address: serverAddress(server),
          role: 'unreachable',
          error: err instanceof DbConnectError ? err.reason : messageOf(err),
        };
      } finally {
        await session?.close();
      }
    }),
  );
}
