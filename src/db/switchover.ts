// The planned primary switchover: preflight, fence the old primary, drain and kill its client sessions,
// wait for the replica to apply everything, promote it, move the writer endpoint and verify, then
// re-attach the old primary as a replica and verify. Before the endpoint moves there are two rollbacks
// (A: only the old primary was touched; B: the replica was promoted too); after it, the only way back is
// another switchover, so failures there end with exact repair steps. A journal records the phase before
// each one starts, so `--resume` after a crash rolls back or finishes. Design: docs/database.md.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { FileStore } from '../store/file.js';
import type { Store } from '../store/store.js';
import { LockHeldError } from '../store/errors.js';
import type { TcpFront } from '../tcp/front.js';
import { findServer, type DbServer, type DbSettings } from './config.js';
import { verifyWriter, writerEndpoint, type WriterEndpoint } from './endpoint.js';
import { clearJournal, readJournal, writeJournal, type Journal, type Phase } from './journal.js';
import {
  clientSessionsSql,
  openTransactionsSql,
  preflight,
  sourceOf,
  toClientSession,
  type ClientSession,
  type PreflightCheck,
} from './preflight.js';
import { DbSession, maskSql } from './session.js';
import { dbStatus, serverAddress } from './status.js';
import { messageOf } from '../errors.js';
import { LateWritesError, SwitchoverStepError } from './errors.js';

/** The run lock's name in the store. */
export const LOCK_NAME = 'db-switchover';

/** What ended the write outage: a verified or unverified endpoint move, or a rollback. */
export type OutageEnd = 'endpoint verified on the new primary' | 'endpoint moved (not verified)' | 'rollback done';

export type Outcome = 'done' | 'dry-run' | 'refused' | 'rolled-back' | 'repair-needed' | 'nothing-to-resume';

/** Step names, in order; DAYSHIFT_DB_PAUSE_AT (test seam) names one of them. */
export const STEPS = [
  'preflight',
  'fence',
  'drain',
  'freeze',
  'catchup',
  'promote',
  'publish',
  'reattach',
  'verify',
] as const;
export type StepName = (typeof STEPS)[number] | 'rollback-a' | 'rollback-b';

export interface StepRecord {
  name: StepName;
  ms: number;
  ok: boolean;
  detail: string;
}

export interface SwitchoverResult {
  outcome: Outcome;
  from?: string;
  to: string;
  message: string;
  steps: StepRecord[];
  checks: PreflightCheck[];
  /** Client sessions on the old primary at preflight (killed after the drain). */
  sessions: ClientSession[];
  /** Write outage: from the fence until the endpoint moved to the new primary, or the rollback ended. */
  outageMs?: number;
  /** What ended the outage, as the summary prints it. */
  outageEnd?: OutageEnd;
  /** The old primary's GTID position when writes stopped. */
  frozenPosition?: string;
  sessionsKilled?: number;
  /** After a failure past the point of no return: what an operator runs, in order. */
  repair?: string[];
}

export interface SwitchoverOptions {
  dryRun?: boolean;
  /** Continue or roll back the run recorded in the journal instead of starting one. */
  resume?: boolean;
  /** The in-process TCP front to flip (besides the state file and the hook). */
  front?: TcpFront;
  /** Replaces the default endpoint (state file + front + hook). */
  endpoint?: WriterEndpoint;
  /** Lock through the store instead of a lock file. */
  store?: Store;
  /** Called as each step ends, for live output; the next step waits for a returned promise. */
  onStep?: (step: StepRecord) => void | Promise<void>;
  /** Test seam (DAYSHIFT_DB_PAUSE_AT): stop before this step (journal already written) until killed. */
  pauseAt?: string;
  onPause?: (step: string) => void;
}

/** Runs a switchover to `target` (a configured server name), or resumes an interrupted one. */
export async function switchover(
  settings: DbSettings,
  target: string,
  options: SwitchoverOptions = {},
): Promise<SwitchoverResult> {
  const run = new Run(settings, options);
  // Without the caller's store, the embedded file store in state_dir holds the lock (it takes over a
  // lock whose process died, e.g. after kill -9).
  const store = options.store ?? (await FileStore.open(settings.stateDir));
  try {
    let lock;
    try {
      lock = await store.lock(LOCK_NAME, `dayshift db switchover (${hostname()}:${process.pid})`, 60);
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      return run.result('refused', target, `another switchover is running: ${err.holder}`);
    }
    try {
      return options.resume ? await run.resume() : await run.start(target);
    } finally {
      await run.closeAll();
      await lock.release();
    }
  } finally {
    if (store !== options.store) await store.close();
  }
}

/** The release conductor's `db: check-replication` step: preflight every replica as a switchover target. */
export async function checkReplication(settings: DbSettings): Promise<{ ok: boolean; targets: SwitchoverResult[] }> {
  const targets: SwitchoverResult[] = [];
  // A server that is not a replica (the primary itself) is no target; one out of reach may be, and fails.
  const candidates = (await dbStatus(settings)).filter((s) => s.role === 'replica' || s.role === 'unreachable');
  for (const server of candidates) {
    const run = new Run(settings, {});
    try {
      targets.push(await run.start(server.name, true));
    } finally {
      await run.closeAll();
    }
  }
  return { ok: targets.length > 0 && targets.every((t) => t.outcome === 'dry-run'), targets };
}

class Run {
  private readonly steps: StepRecord[] = [];
  private checks: PreflightCheck[] = [];
  private sessions: ClientSession[] = [];
  private readonly open: DbSession[] = [];
  private readonly endpoint: WriterEndpoint;
  private outageStart?: number;
  private outageMs?: number;
  private outageEnd?: OutageEnd;
  private sessionsKilled?: number;
  private journal?: Journal;
  /** The old primary's session holding FLUSH TABLES WITH READ LOCK (fence: ftwrl). */
  private readLock?: DbSession;

  constructor(
    private readonly settings: DbSettings,
    private readonly options: SwitchoverOptions,
  ) {
    this.endpoint = options.endpoint ?? writerEndpoint(settings, options.front);
  }

  result(outcome: Outcome, to: string, message: string, extra: Partial<SwitchoverResult> = {}): SwitchoverResult {
    return {
      outcome,
      from: this.journal?.from,
      to,
      message,
      steps: this.steps,
      checks: this.checks,
      sessions: this.sessions,
      outageMs: this.outageMs,
      outageEnd: this.outageEnd,
      frozenPosition: this.journal?.frozenPos,
      sessionsKilled: this.sessionsKilled,
      ...extra,
    };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((s) => s.close()));
  }

  private async connect(server: DbServer): Promise<DbSession> {
    const session = await DbSession.open(server, {
      connectTimeout: this.settings.connect_timeout,
      statementTimeout: this.settings.statement_timeout,
    });
    this.open.push(session);
    return session;
  }

  private async step<T>(name: StepName, action: () => Promise<{ value: T; detail: string }>): Promise<T> {
    await this.pause(name);
    const started = performance.now();
    try {
      const { value, detail } = await action();
      await this.record(name, started, true, detail);
      return value;
    } catch (err) {
      await this.record(name, started, false, messageOf(err));
      throw new SwitchoverStepError(`${name}: ${messageOf(err)}`, { cause: err });
    }
  }

  private async record(name: StepName, started: number, ok: boolean, detail: string): Promise<void> {
    const record = { name, ms: Math.round((performance.now() - started) * 10) / 10, ok, detail };
    this.steps.push(record);
    await this.options.onStep?.(record);
  }

  private async enter(phase: Phase): Promise<void> {
    this.journal = { ...this.journal!, phase };
    await writeJournal(this.settings.stateDir, this.journal);
  }

  private async pause(step: StepName): Promise<void> {
    if (this.options.pauseAt !== step) return;
    this.options.onPause?.(step);
    // Held until the test kills the process; the interval keeps the event loop alive.
    await new Promise(() => setInterval(() => undefined, 60_000));
  }

  async start(targetName: string, dryRun = this.options.dryRun === true): Promise<SwitchoverResult> {
    const target = findServer(this.settings, targetName);
    if (!dryRun) {
      const pending = await readJournal(this.settings.stateDir);
      if (pending) {
        return this.result(
          'refused',
          targetName,
          `an interrupted switchover ${pending.from} → ${pending.to} (phase ${pending.phase}) is in the journal: run \`dayshift db switchover --resume\` first`,
        );
      }
    }
    let from: DbSession;
    let to: DbSession;
    try {
      const pre = await this.step('preflight', async () => {
        const toSession = await this.connect(target);
        const { status, from: source } = await sourceOf(this.settings, toSession);
        if (!status) throw new Error(`${target.name} is not a replica: nothing to switch to`);
        if (!source)
          throw new Error(
            `${target.name} replicates from ${status.sourceHost}:${status.sourcePort}, which is not a configured server`,
          );
        const fromSession = await this.connect(source);
        const report = await preflight(this.settings, fromSession, toSession, status);
        this.checks = report.checks;
        this.sessions = report.sessions;
        this.journal = {
          id: randomUUID(),
          from: source.name,
          to: target.name,
          phase: 'fencing',
          started: new Date().toISOString(),
        };
        const failed = report.checks.filter((c) => !c.ok);
        if (failed.length) throw new Error(failed.map((c) => `${c.name}: ${c.detail}`).join('; '));
        return {
          value: { from: fromSession, to: toSession },
          detail: `${report.checks.length} checks passed, ${report.sessions.length} client session(s) on ${source.name}`,
        };
      });
      from = pre.from;
      to = pre.to;
    } catch (err) {
      return this.result('refused', targetName, messageOf(err).replace(/^preflight: /, ''));
    }
    if (dryRun)
      return this.result(
        'dry-run',
        targetName,
        `preflight passed: ${this.journal!.from} → ${targetName} can be switched`,
      );

    await this.enter('fencing');
    let pos: string;
    try {
      this.outageStart = performance.now();
      await this.step('fence', async () => {
        await from.run(from.dialect.lockWait(this.settings.lock_wait));
        // The client timeout backs up lock_wait_timeout in case the server ignores it.
        for (const sql of from.dialect.fence)
          await from.run(sql, this.settings.lock_wait + this.settings.statement_timeout);
        return { value: undefined, detail: from.dialect.fence.join('; ') };
      });
      this.sessionsKilled = await this.step('drain', () => this.drain(from));
      pos = await this.step('freeze', () => this.freeze(from));
      this.journal = { ...this.journal!, frozenPos: pos };
      await writeJournal(this.settings.stateDir, this.journal);
      await this.step('catchup', async () => {
        const reached = await to.check(
          to.dialect.waitFor(pos, this.settings.catchup),
          this.settings.catchup + this.settings.statement_timeout,
        );
        if (!reached || !(await to.check(to.dialect.reached(pos))))
          throw new Error(`${to.server.name} did not apply ${pos} within ${this.settings.catchup} ms`);
        return { value: undefined, detail: `${to.server.name} applied ${pos}` };
      });
    } catch (err) {
      return this.rollbackA(err);
    }

    await this.enter('promoting');
    try {
      await this.step('promote', async () => {
        for (const sql of to.dialect.promote) await to.run(sql);
        return { value: undefined, detail: to.dialect.promote.join('; ') };
      });
    } catch (err) {
      return this.rollbackB(err, 'promoting');
    }
    return this.finish(to.server, from.server, 'publishing');
  }

  /** Publishes (unless already past it), then re-attaches and verifies. */
  private async finish(to: DbServer, from: DbServer, phase: 'publishing' | 'published'): Promise<SwitchoverResult> {
    if (phase === 'publishing') {
      await this.enter('publishing');
      try {
        const verified = await this.step('publish', async () => {
          const done = await this.endpoint.publish(to, from);
          const toSession = await this.connect(to);
          const verdict = await verifyWriter(this.settings, to, toSession.serverId);
          return { value: verdict.startsWith('verified'), detail: `${done.join(', ')}; ${verdict}` };
        });
        this.endOutage(verified ? 'endpoint verified on the new primary' : 'endpoint moved (not verified)');
      } catch (err) {
        return this.publishFailed(err, to, from);
      }
      await this.enter('published');
    }
    try {
      const fromSession = await this.step('reattach', async () => {
        // CHANGE MASTER is refused under the read lock, and the SQL thread would block on it.
        await this.releaseReadLock();
        const session = await this.connect(from);
        const sql = session.dialect.changeSource({ host: to.host, port: to.port, ...this.settings.replication }, true);
        try {
          await session.run(session.dialect.stopReplica);
        } catch {
          // Not configured as a replica yet: nothing to stop.
        }
        await session.run(sql);
        // A write after the freeze (an account that bypasses read_only) is not on the new primary, and
        // DEMOTE would have hidden it in the applied position: stop before replication starts.
        const frozen = this.journal?.frozenPos;
        if (frozen !== undefined && !(await session.check(session.dialect.within(frozen)))) {
          const now = String((await session.row(session.dialect.position))?.pos ?? '');
          throw new LateWritesError({ server: from.name, now, frozen, to: to.name });
        }
        await session.run(session.dialect.startReplica);
        return { value: session, detail: `${maskSql(sql)}; ${session.dialect.startReplica}` };
      });
      await this.step('verify', async () => {
        const toSession = await this.connect(to);
        const pos = String((await toSession.row(toSession.dialect.position))?.pos ?? '');
        await this.waitReplicating(fromSession, pos);
        return {
          value: undefined,
          detail: `${from.name} replicates from ${to.name} (IO Yes, SQL Yes) and applied ${pos}`,
        };
      });
    } catch (err) {
      const late = err instanceof Error ? err.cause : undefined;
      return this.result(
        'repair-needed',
        to.name,
        `${to.name} is the primary and serving writes, but ${from.name} is not replicating from it: ${messageOf(err)}`,
        {
          repair:
            late instanceof LateWritesError ? this.lateWritesRepair(late, to, from) : this.reattachRepair(to, from),
        },
      );
    }
    await clearJournal(this.settings.stateDir);
    return this.result('done', to.name, `${to.name} is the primary; ${from.name} replicates from it`);
  }

  /** Only a run that fenced has an outage to report (a resumed run did not see the fence). */
  private endOutage(end: OutageEnd): void {
    if (this.outageStart === undefined) return;
    this.outageMs = Math.round(performance.now() - this.outageStart);
    this.outageEnd = end;
  }

  private async drain(from: DbSession): Promise<{ value: number; detail: string }> {
    const deadline = performance.now() + this.settings.drain;
    let open = (await from.rows(openTransactionsSql(this.settings, from))).length;
    while (open > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      open = (await from.rows(openTransactionsSql(this.settings, from))).length;
    }
    // Idle sessions are killed too: their next statement would only meet read_only, and a closed
    // connection makes pools reconnect through the endpoint to the new primary.
    const sessions = (await from.rows(clientSessionsSql(this.settings, from))).map(toClientSession);
    let killed = 0;
    for (const s of sessions) {
      try {
        await from.run(`KILL CONNECTION ${s.id}`);
        killed++;
      } catch (err) {
        // 1094: the session ended by itself meanwhile.
        if ((err as { errno?: number }).errno !== 1094) throw err;
      }
    }
    let detail = `${open} open transaction(s) left after the drain; ${killed} session(s) killed`;
    if (this.settings.fence === 'ftwrl') {
      // Session-scoped: held on this dedicated connection until re-attach or rollback.
      await from.run('FLUSH TABLES WITH READ LOCK', this.settings.lock_wait + this.settings.statement_timeout);
      this.readLock = from;
      detail += '; FLUSH TABLES WITH READ LOCK held';
    }
    return { value: killed, detail };
  }

  /** The old primary's position, read until two reads 50 ms apart agree (writes have really stopped). */
  private async freeze(from: DbSession): Promise<{ value: string; detail: string }> {
    const deadline = performance.now() + this.settings.catchup;
    let previous = String((await from.row(from.dialect.position))?.pos ?? '');
    while (true) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const pos = String((await from.row(from.dialect.position))?.pos ?? '');
      if (pos === previous) return { value: pos, detail: `position ${pos}` };
      if (performance.now() > deadline)
        throw new Error(
          `writes did not stop on ${from.server.name}: position still moving (${pos}); a session with READ_ONLY ADMIN or SUPER may be writing`,
        );
      previous = pos;
    }
  }

  private async waitReplicating(replica: DbSession, pos: string): Promise<void> {
    const deadline = performance.now() + this.settings.catchup;
    while (true) {
      const row = await replica.row(replica.dialect.replicaStatus);
      const status = row ? replica.dialect.parseReplicaStatus(row) : undefined;
      if (status?.ioError || status?.sqlError)
        throw new Error(`replication error on ${replica.server.name}: ${status.ioError || status.sqlError}`);
      if (status?.ioRunning === 'Yes' && status.sqlRunning === 'Yes') {
        const left = Math.max(1, deadline - performance.now());
        if (await replica.check(replica.dialect.waitFor(pos, left), left + this.settings.statement_timeout)) return;
        throw new Error(`${replica.server.name} did not apply ${pos} within ${this.settings.catchup} ms`);
      }
      if (performance.now() > deadline)
        throw new Error(
          `${replica.server.name}: IO ${status?.ioRunning ?? 'not configured'}, SQL ${status?.sqlRunning ?? 'not configured'}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async releaseReadLock(): Promise<void> {
    const holder = this.readLock;
    this.readLock = undefined;
    try {
      await holder?.run('UNLOCK TABLES');
    } catch {
      // The connection is gone, and the lock went with it.
    }
  }

  /** Rollback A: only the old primary was touched; make it writable again. */
  private async rollbackA(cause: unknown): Promise<SwitchoverResult> {
    const { from: fromName, to } = this.journal!;
    const from = findServer(this.settings, fromName);
    try {
      await this.step('rollback-a', async () => {
        await this.releaseReadLock();
        const session = await this.connect(from);
        for (const sql of session.dialect.unfence) await session.run(sql);
        return { value: undefined, detail: `${from.name}: ${session.dialect.unfence.join('; ')}` };
      });
    } catch (err) {
      return this.result('repair-needed', to, `${messageOf(cause)}; rollback failed: ${messageOf(err)}`, {
        repair: [
          `on ${from.name} (${serverAddress(from)}): SET GLOBAL read_only=OFF  -- MySQL: SET GLOBAL super_read_only=OFF; SET GLOBAL read_only=OFF`,
          'then: dayshift db status',
        ],
      });
    }
    this.endOutage('rollback done');
    await clearJournal(this.settings.stateDir);
    return this.result('rolled-back', to, `${messageOf(cause)}; ${from.name} is the writable primary again`);
  }

  /**
   * Rollback B: the replica was promoted but nothing was written to it. Make it read-only, point it at
   * the old primary again (its applied position survives RESET SLAVE ALL), and make the old one writable.
   */
  private async rollbackB(cause: unknown, phase: 'promoting' | 'publishing'): Promise<SwitchoverResult> {
    const from = findServer(this.settings, this.journal!.from);
    const to = findServer(this.settings, this.journal!.to);
    try {
      await this.step('rollback-b', async () => {
        const toSession = await this.connect(to);
        for (const sql of toSession.dialect.fence) await toSession.run(sql);
        try {
          await toSession.run(toSession.dialect.stopReplica);
        } catch {
          // RESET SLAVE ALL already removed the configuration: nothing to stop.
        }
        await toSession.run(
          toSession.dialect.changeSource({ host: from.host, port: from.port, ...this.settings.replication }, false),
        );
        await toSession.run(toSession.dialect.startReplica);
        if (phase === 'publishing') await this.endpoint.publish(from, to);
        await this.releaseReadLock();
        const fromSession = await this.connect(from);
        for (const sql of fromSession.dialect.unfence) await fromSession.run(sql);
        const pos = String((await fromSession.row(fromSession.dialect.position))?.pos ?? '');
        await this.waitReplicating(toSession, pos);
        return { value: undefined, detail: `${to.name} replicates from ${from.name} again; ${from.name} writable` };
      });
    } catch (err) {
      return this.result('repair-needed', to.name, `${messageOf(cause)}; rollback failed: ${messageOf(err)}`, {
        repair: [
          `on ${to.name} (${serverAddress(to)}): SET GLOBAL read_only=ON; STOP SLAVE;`,
          `on ${to.name}: CHANGE MASTER TO MASTER_HOST='${from.host}', MASTER_PORT=${from.port}, MASTER_USER='${this.settings.replication.user}', MASTER_PASSWORD='***', MASTER_USE_GTID=slave_pos; START SLAVE;`,
          `make sure the writer endpoint points at ${from.name}`,
          `on ${from.name} (${serverAddress(from)}): SET GLOBAL read_only=OFF`,
          '(MySQL: STOP/START REPLICA, CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION=1, super_read_only)',
        ],
      });
    }
    this.endOutage('rollback done');
    await clearJournal(this.settings.stateDir);
    return this.result(
      'rolled-back',
      to.name,
      `${messageOf(cause)}; ${from.name} is the writable primary again, ${to.name} its replica`,
    );
  }

  /** The endpoint flip failed or was not verified: roll back only if nothing has been written to `to`. */
  private async publishFailed(cause: unknown, to: DbServer, from: DbServer): Promise<SwitchoverResult> {
    if (await this.untouched(to)) return this.rollbackB(cause, 'publishing');
    return this.result(
      'repair-needed',
      to.name,
      `${messageOf(cause)}; ${to.name} has already taken writes, so there is no going back`,
      {
        repair: [
          `point the writer endpoint at ${to.name} (${serverAddress(to)}) and check that clients reach it`,
          `then run: dayshift db switchover --resume   (re-attaches ${from.name} as a replica of ${to.name})`,
        ],
      },
    );
  }

  /** True when the promoted server has nothing beyond the old primary's frozen position. */
  private async untouched(to: DbServer): Promise<boolean> {
    const pos = this.journal?.frozenPos;
    if (pos === undefined) return false;
    try {
      const session = await this.connect(to);
      return await session.check(session.dialect.within(pos));
    } catch {
      return false;
    }
  }

  private reattachRepair(to: DbServer, from: DbServer): string[] {
    const mariadb = `CHANGE MASTER TO MASTER_HOST='${to.host}', MASTER_PORT=${to.port}, MASTER_USER='${this.settings.replication.user}', MASTER_PASSWORD='***', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1;`;
    return [
      `on ${from.name} (${serverAddress(from)}): SET GLOBAL read_only=ON; STOP SLAVE;`,
      `on ${from.name}: ${mariadb}  -- MySQL: CHANGE REPLICATION SOURCE TO SOURCE_HOST=..., SOURCE_AUTO_POSITION=1`,
      `on ${from.name}: START SLAVE;`,
      `check on ${from.name}: SHOW SLAVE STATUS → Slave_IO_Running=Yes, Slave_SQL_Running=Yes, no Last_*_Error`,
      'or, once the cause is fixed: dayshift db switchover --resume',
    ];
  }

  private lateWritesRepair(late: LateWritesError, to: DbServer, from: DbServer): string[] {
    return [
      `${from.name} has transactions after ${late.frozen} (now ${late.now}) written by an account that bypasses read_only (READ_ONLY ADMIN, SUPER, ALL)`,
      `inspect them: mysqlbinlog --start-position/--read-from-remote-server on ${from.name}'s binlog after GTID ${late.frozen}; re-apply on ${to.name} what must be kept`,
      `then rebuild ${from.name} as a replica of ${to.name} from a fresh copy (mariadb-backup), or remove the stray transactions and run: dayshift db switchover --resume`,
      `remove READ_ONLY ADMIN/SUPER from application accounts, or set database.fence: ftwrl`,
    ];
  }

  async resume(): Promise<SwitchoverResult> {
    const journal = await readJournal(this.settings.stateDir);
    if (!journal) return this.result('nothing-to-resume', '', 'no interrupted switchover in the journal');
    this.journal = journal;
    const from = findServer(this.settings, journal.from);
    const to = findServer(this.settings, journal.to);
    const cause = new Error(`resumed an interrupted switchover ${from.name} → ${to.name} at phase ${journal.phase}`);
    switch (journal.phase) {
      case 'fencing':
        return this.rollbackA(cause);
      case 'promoting':
        // The endpoint never moved, so no client wrote to the new primary: roll back even if it is down
        // (the rollback then fails with repair steps rather than guessing).
        return this.rollbackB(cause, 'promoting');
      case 'publishing':
        // The endpoint may or may not have moved; if anything was written to the new primary it did.
        if (await this.untouched(to)) return this.rollbackB(cause, 'publishing');
        return this.finish(to, from, 'publishing');
      case 'published':
        return this.finish(to, from, 'published');
    }
  }
}
