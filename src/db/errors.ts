// The database layer's errors: a server out of reach, a switchover step that failed, and writes the
// old primary took after the freeze.
import { DayshiftError } from '../errors.js';
import { serverAddress, type DbServer } from './config.js';

/** A server that could not be reached or refused the login: the message names it, its address and the account. */
export class DbConnectError extends DayshiftError {
  readonly code = 'DAYSHIFT_DB_CONNECT';
  readonly server: DbServer;
  /** The driver's own words (ECONNREFUSED, Access denied ...), for places that name the server already. */
  readonly reason: string;

  constructor({
    server,
    reason,
    via,
    credentials,
    cause,
  }: {
    server: DbServer;
    reason: string;
    via?: { host: string; port: number };
    credentials?: string;
    cause: unknown;
  }) {
    const where = via
      ? `the writer endpoint ${serverAddress(via)} (for ${server.name})`
      : `${server.name} (${serverAddress(server)})`;
    super(
      `cannot connect to ${where} as ${server.user}: ${reason}${hint((cause as { code?: string }).code, credentials ?? `database.servers (${server.name})`)}`,
      { cause },
    );
    this.server = server;
    this.reason = reason;
  }
}

function hint(code: string | undefined, credentials: string): string {
  if (code === 'ECONNREFUSED') return ' (is the server running and listening there?)';
  if (code === 'ER_ACCESS_DENIED_ERROR')
    return ` (check the user and password in ${credentials}, and the host part of the account's grant)`;
  if (code === 'ETIMEDOUT') return ' (no answer within connect_timeout)';
  return '';
}

/** One step of the switchover failed; `cause` is what went wrong in it. */
export class SwitchoverStepError extends DayshiftError {
  readonly code = 'DAYSHIFT_SWITCHOVER_STEP';
}

/** The old primary has transactions after the frozen position that the new primary lacks. */
export class LateWritesError extends DayshiftError {
  readonly code = 'DAYSHIFT_LATE_WRITES';
  readonly server: string;
  readonly now: string;
  readonly frozen: string;

  constructor({ server, now, frozen, to }: { server: string; now: string; frozen: string; to: string }) {
    super(`${server} took writes after the freeze (now at ${now}, frozen at ${frozen}); they are not on ${to}`);
    this.server = server;
    this.now = now;
    this.frozen = frozen;
  }
}
