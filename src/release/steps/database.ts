// The release's database steps (release.database): the origin comment's recipe — run the long ALTER on
// the replica, check that replication caught up, switch the roles, then migrate the old primary — as plan
// steps. The switchover itself is src/db's, with its own journal, lock and rollbacks.
import type { DbStepConfig } from '../../config/release-schema.js';
import { dbSettingsFromConfig, type DbServer, type DbSettings } from '../../db/config.js';
import { dbStatus, serverAddress, type ServerStatus } from '../../db/status.js';
import { checkReplication, switchover, type SwitchoverResult } from '../../db/switchover.js';
import { readJournal } from '../../db/journal.js';
import type { LoadedConfig } from '../../config/load.js';
import type { Store } from '../../store/store.js';
import { ReleaseStepError } from '../errors.js';
import { commandFailure, runCommand } from '../hooks.js';
import { releaseConfig } from '../plan.js';
import type { DbStep } from '../types.js';
import { captureOutput, releaseEnv, type StepRunner } from './step.js';

export const databaseStep: StepRunner<DbStep> = async (step, ctx) => {
  const { plane } = ctx;
  const { onLine } = captureOutput(step, ctx);
  return runDbStep(releaseConfig(plane.config).database[step.dbStep]!, {
    loaded: plane.loaded,
    store: plane.store,
    env: releaseEnv(plane, ctx.release, undefined),
    signal: ctx.signal,
    onLine,
    ...(step.dbTarget ? { target: step.dbTarget } : {}),
    recordTarget: async (target) => {
      step.dbTarget = target;
      await ctx.save();
    },
  });
};

export interface DbStepContext {
  loaded: LoadedConfig;
  store: Store;
  /** The release's environment (DAYSHIFT_VERSION …); migrate commands get the server's on top. */
  env: Record<string, string>;
  signal?: AbortSignal;
  onLine: (line: string) => void;
  /** The switchover target an earlier run of this step chose. */
  target?: string;
  /** Persists the chosen switchover target before the switchover acts. */
  recordTarget?: (target: string) => Promise<void>;
}

/** Runs one entry of release.database. */
export async function runDbStep(db: DbStepConfig, ctx: DbStepContext): Promise<{ detail: string }> {
  const settings = await dbSettingsFromConfig(ctx.loaded.config, ctx.loaded.baseDir, ctx.loaded.file);
  switch (db.kind) {
    case 'check-replication':
      return checkStep(settings, ctx);
    case 'switchover':
      return switchoverStep(settings, db.to, ctx);
    case 'migrate':
      return migrateStep(settings, db, ctx);
  }
}

async function checkStep(settings: DbSettings, ctx: DbStepContext): Promise<{ detail: string }> {
  const { ok, targets } = await checkReplication(settings);
  for (const target of targets) {
    for (const check of target.checks)
      ctx.onLine(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${check.detail ? `: ${check.detail}` : ''}`);
  }
  if (targets.length === 0)
    throw new ReleaseStepError('no replica to check: every server is a primary or unreachable (dayshift db status)');
  if (!ok) throw new ReleaseStepError(`replication is not healthy: ${failures(targets).join('; ')}`);
  return { detail: `${targets.map((t) => t.to).join(', ')} replicating, caught up, no errant transactions` };
}

async function switchoverStep(
  settings: DbSettings,
  to: string | undefined,
  ctx: DbStepContext,
): Promise<{ detail: string }> {
  // A switchover interrupted by a crash finishes (or rolls back) from its journal before anything else.
  const resume = (await readJournal(settings.stateDir)) !== undefined;
  const status = await dbStatus(settings);
  // Chosen once: after a switchover the old primary is the only replica, and choosing again would switch back.
  const target = to ?? ctx.target ?? onlyReplica(status);
  if (target !== ctx.target) await ctx.recordTarget?.(target);
  if (!resume && status.find((s) => s.name === target)?.role === 'primary') {
    return { detail: `${target} is already the primary (a finished switchover is not repeated)` };
  }
  const result = await switchover(settings, target, {
    store: ctx.store,
    ...(resume ? { resume: true } : {}),
    onStep: (step) => ctx.onLine(`${step.name}: ${step.detail ?? ''} (${step.ms} ms)`),
  });
  if (result.outcome === 'done' || result.outcome === 'nothing-to-resume') {
    return {
      detail: `${result.to} is the primary${result.outageMs !== undefined ? `; write outage ${result.outageMs} ms` : ''}`,
    };
  }
  for (const line of result.repair ?? []) ctx.onLine(`repair: ${line}`);
  const why = result.outcome === 'refused' ? failures([result]).join('; ') || result.message : result.message;
  throw new ReleaseStepError(`switchover to ${target} ${result.outcome}: ${why}`);
}

async function migrateStep(
  settings: DbSettings,
  db: Extract<DbStepConfig, { kind: 'migrate' }>,
  ctx: DbStepContext,
): Promise<{ detail: string }> {
  const status = await dbStatus(settings);
  const name = db.on === 'primary' ? onlyPrimary(status) : onlyReplica(status);
  const server = settings.servers.find((s) => s.name === name)!;
  const primary = settings.servers.find((s) => s.name === onlyPrimary(status))!;
  const result = await runCommand(db.run, {
    cwd: ctx.loaded.baseDir,
    env: {
      ...ctx.env,
      ...serverEnv('DAYSHIFT_DB', server),
      DAYSHIFT_DB_ROLE: db.on,
      DAYSHIFT_DB_PRIMARY: serverAddress(primary),
    },
    timeoutMs: db.timeout,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onLine: ctx.onLine,
  });
  const failure = commandFailure(`migrate on ${name}`, result, db.timeout);
  if (failure) throw new ReleaseStepError(failure);
  return { detail: `ran on ${name} (${db.on}, ${serverAddress(server)})` };
}

function serverEnv(prefix: string, server: DbServer): Record<string, string> {
  return {
    [`${prefix}_SERVER`]: server.name,
    [`${prefix}_HOST`]: server.host,
    [`${prefix}_PORT`]: String(server.port),
  };
}

function onlyReplica(status: ServerStatus[]): string {
  const replicas = status.filter((s) => s.role === 'replica');
  if (replicas.length !== 1)
    throw new ReleaseStepError(
      `expected one replica, found ${replicas.length} (${describe(status)}): name the target with { switchover: { to: NAME } }`,
    );
  return replicas[0]!.name;
}

function onlyPrimary(status: ServerStatus[]): string {
  const primaries = status.filter((s) => s.role === 'primary');
  if (primaries.length !== 1)
    throw new ReleaseStepError(`expected one primary, found ${primaries.length} (${describe(status)})`);
  return primaries[0]!.name;
}

function describe(status: ServerStatus[]): string {
  return status.map((s) => `${s.name} ${s.role}`).join(', ');
}

function failures(results: SwitchoverResult[]): string[] {
  return results.flatMap((r) =>
    r.checks.filter((c) => !c.ok).map((c) => `${c.name}${c.detail ? `: ${c.detail}` : ''}`),
  );
}
