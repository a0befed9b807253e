// `dayshift db status | switchover | front`: the MySQL/MariaDB primary switchover and its writer
// endpoint. Reads only the `database` section of the config file. Exit codes: docs/database.md.
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE } from '../config/load.js';
import { parseAddress } from '../config/units.js';
import { loadDbSettings, type DbSettings } from '../db/config.js';
import { followWriterState, readWriterState } from '../db/endpoint.js';
import { dbStatus, type ServerStatus } from '../db/status.js';
import { STEPS, switchover, type Outcome, type StepRecord, type SwitchoverResult } from '../db/switchover.js';
import { adoptInheritedSockets } from '../socket-activation.js';
import { TcpFront } from '../tcp/front.js';
import { VERSION } from '../dayshift.js';
import { systemdRefusal } from '../upgrade/upgrade.js';
import { messageOf } from '../errors.js';
import { previousGeneration, reportToPreviousGeneration, startNextGeneration } from '../upgrade/next-generation.js';
import { CliError, colour, duration, emit, EXIT, stateColour, table } from './output.js';

/** refused: nothing changed; rolled-back: the old primary is writable again; repair-needed: steps printed. */
const OUTCOME_EXIT: Record<Outcome, number> = {
  done: EXIT.ok,
  'dry-run': EXIT.ok,
  'nothing-to-resume': EXIT.ok,
  refused: EXIT.refused,
  'rolled-back': EXIT.rolledBack,
  'repair-needed': EXIT.repair,
};

interface CommonOptions {
  config: string;
  json?: boolean;
}

export function register(program: Command): void {
  const db = program
    .command('db')
    .description('MySQL/MariaDB primary switchover and writer endpoint (see docs/database.md)');

  db.command('status')
    .description("each server's role, GTID positions, replication threads, lag and read_only")
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions) => {
      const settings = await loadDbSettings(opts.config);
      const status = await dbStatus(settings);
      emit(Boolean(opts.json), status, renderStatus);
      if (status.some((s) => s.role === 'unreachable')) process.exitCode = EXIT.unreachable;
    });

  db.command('switchover')
    .description(
      'make SERVER the primary: preflight, fence, catch up, promote, move the writer endpoint, re-attach the old primary',
    )
    .option('--to <server>', 'the replica to promote (a name from database.servers)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('--dry-run', 'run the preflight and print the plan; change nothing')
    .option('--yes', 'do not ask for confirmation (required without a terminal)')
    .option('--resume', 'finish or roll back a run that was interrupted (crash, kill -9)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions & { to?: string; dryRun?: boolean; yes?: boolean; resume?: boolean }) => {
      if (!opts.resume && !opts.to) throw new CliError('--to SERVER is required (or --resume)', EXIT.usage);
      const settings = await loadDbSettings(opts.config);
      if (opts.to !== undefined && !settings.servers.some((s) => s.name === opts.to)) {
        throw new CliError(
          `unknown server "${opts.to}"; configured servers: ${settings.servers.map((s) => s.name).join(', ')}`,
          EXIT.usage,
        );
      }
      const json = Boolean(opts.json);
      const live = (step: StepRecord) => {
        if (!json) process.stdout.write(`${renderStep(step)}\n`);
      };
      const pauseAt = process.env.DAYSHIFT_DB_PAUSE_AT;
      if (pauseAt !== undefined && !(STEPS as readonly string[]).includes(pauseAt))
        throw new CliError(`DAYSHIFT_DB_PAUSE_AT must be one of ${STEPS.join(', ')}`, EXIT.usage);
      const onPause = (step: string) =>
        process.stderr.write(`paused before ${step} (DAYSHIFT_DB_PAUSE_AT), pid ${process.pid}\n`);
      const target = opts.to ?? '';

      if (!opts.dryRun && !opts.yes) {
        if (!process.stdin.isTTY)
          throw new CliError('refusing to switch without a terminal to confirm on: add --yes', EXIT.refused);
        if (!opts.resume) {
          const plan = await switchover(settings, target, { dryRun: true, onStep: live });
          if (plan.outcome !== 'dry-run') return finish(plan, json);
          process.stdout.write(`${renderPlan(plan, settings)}\n`);
        }
        if (!(await confirm(opts.resume ? 'Resume the interrupted switchover?' : `Switch the primary to ${target}?`))) {
          throw new CliError('not confirmed; nothing changed', EXIT.refused);
        }
      }
      const result = await switchover(settings, target, {
        dryRun: opts.dryRun,
        resume: opts.resume,
        onStep: live,
        pauseAt,
        onPause,
      });
      if (result.outcome === 'dry-run' && !json) process.stdout.write(`${renderPlan(result, settings)}\n`);
      finish(result, json);
    });

  db.command('front')
    .description('run the writer endpoint: a TCP front to the current primary, following switchovers (foreground)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('--listen <address>', 'host:port to listen on (default: database.writer.listen)')
    .addHelpText(
      'after',
      '\nUnder systemd socket activation (LISTEN_FDS), listens on the socket named writer instead of binding it.\n' +
        'SIGUSR2 starts the front now installed on the same socket; this one then lets its connections end (up to\n' +
        '30s) and exits.',
    )
    .action(async (opts: CommonOptions & { listen?: string }) => {
      const settings = await loadDbSettings(opts.config);
      const listen = opts.listen !== undefined ? parseAddress(opts.listen) : settings.writer.listen;
      if (!listen) throw new CliError('no address: set database.writer.listen or pass --listen host:port', EXIT.usage);
      // Started by SIGUSR2 to a running front: it waits to hear that this one serves, or why not.
      const previous = previousGeneration();
      // Decided at start, while the parent is still the one that started this process.
      const refusal = systemdRefusal();
      let front: TcpFront;
      let initial: { name: string; host: string; port: number };
      try {
        adoptInheritedSockets([{ name: 'writer', address: listen }]);
        initial = await initialPrimary(settings);
        front = new TcpFront({
          listen,
          target: { host: initial.host, port: initial.port },
          connectTimeout: settings.connect_timeout,
          proxyProtocol: settings.writer.proxy_protocol,
        });
        const address = await front.start();
        process.stdout.write(
          `writer endpoint listening on ${address.address}:${address.port} → ${initial.name} (${initial.host}:${initial.port})\n`,
        );
      } catch (err) {
        if (previous !== undefined) await reportToPreviousGeneration({ type: 'failed', error: messageOf(err) });
        throw err;
      }
      const stop = followWriterState(settings, front, (state) => {
        process.stdout.write(
          `${new Date().toISOString()} writer → ${state.primary} (${state.host}:${state.port}); old connections closed\n`,
        );
      });
      if (previous !== undefined)
        await reportToPreviousGeneration({ type: 'ready', pid: process.pid, version: VERSION });
      const replaced = await new Promise<boolean>((resolve) => {
        process.once('SIGINT', () => resolve(false));
        process.once('SIGTERM', () => resolve(false));
        process.on('SIGUSR2', () => void upgradeFront(front, refusal).then((done) => done && resolve(true)));
      });
      // Replaced: open connections finish (still following switchovers) for up to FRONT_GRACE_MS.
      if (replaced) await front.drain(FRONT_GRACE_MS);
      stop();
      const stats = front.stats();
      await front.close();
      process.stdout.write(
        `stopped: ${stats.total} connection(s), ${stats.bytesIn} bytes in, ${stats.bytesOut} bytes out\n`,
      );
    });
}

/** How long the connections of a replaced front may take to end by themselves. */
const FRONT_GRACE_MS = 30_000;

let upgrading = false;

/**
 * SIGUSR2: starts the front now installed on the same socket (next-generation.ts); true once it serves.
 * A failure is printed and this front serves on.
 */
async function upgradeFront(front: TcpFront, refusal: string | undefined): Promise<boolean> {
  if (upgrading) return false;
  if (refusal) {
    process.stderr.write(`${new Date().toISOString()} upgrade refused: ${refusal}\n`);
    return false;
  }
  upgrading = true;
  try {
    const next = await startNextGeneration([front.listeningSocket()], 60_000);
    process.stdout.write(
      `${new Date().toISOString()} upgraded: dayshift ${VERSION} (pid ${process.pid}) → ${next.version} (pid ${next.pid}); this one finishes its connections and exits\n`,
    );
    return true;
  } catch (err) {
    process.stderr.write(`${new Date().toISOString()} upgrade failed: ${messageOf(err)}\n`);
    upgrading = false;
    return false;
  }
}

/** The front starts at the primary in the state file, else the server that says it is the primary. */
async function initialPrimary(settings: DbSettings): Promise<{ name: string; host: string; port: number }> {
  const state = await readWriterState(settings.stateDir);
  if (state) return { name: state.primary, host: state.host, port: state.port };
  const primaries = (await dbStatus(settings)).filter((s) => s.role === 'primary');
  if (primaries.length !== 1)
    throw new CliError(
      `cannot tell the primary: ${primaries.length} writable non-replica servers (run dayshift db status)`,
      EXIT.refused,
    );
  return settings.servers.find((s) => s.name === primaries[0]!.name)!;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function finish(result: SwitchoverResult, json: boolean): void {
  emit(json, result, renderSummary);
  process.exitCode = OUTCOME_EXIT[result.outcome];
}

function renderStep(step: StepRecord): string {
  const mark = step.ok ? colour.green('ok  ') : colour.red('FAIL');
  return `${mark} ${step.name.padEnd(10)} ${duration(step.ms).padStart(7)}  ${step.detail}`;
}

function renderPlan(result: SwitchoverResult, settings: DbSettings): string {
  const lines = [
    colour.bold(`Plan: ${result.from} → ${result.to}`),
    ...result.checks.map((c) => `  ${c.ok ? colour.green('✓') : colour.red('✗')} ${c.name}: ${c.detail}`),
    `  client sessions on ${result.from} to be killed after a ${duration(settings.drain)} drain: ${result.sessions.length ? result.sessions.map((s) => `${s.id} ${s.user}@${s.host}`).join(', ') : 'none'}`,
    `  steps: ${STEPS.slice(1).join(' → ')}`,
    `  write outage budget: lock wait ${duration(settings.lock_wait)} + drain ${duration(settings.drain)} + catch-up ${duration(settings.catchup)} at most`,
  ];
  return lines.join('\n');
}

/** The summary's first words: what happened, in the colour an operator scans for. */
const HEADLINE: Record<Outcome, string> = {
  done: `${colour.green('ok')} done`,
  'dry-run': `${colour.green('ok')} dry run`,
  'nothing-to-resume': `${colour.green('ok')} nothing to resume`,
  refused: `${colour.red('refused')}, nothing changed`,
  'rolled-back': colour.yellow('aborted and rolled back'),
  'repair-needed': `${colour.red('FAILED')} past the point of no return, repair needed`,
};

export function renderSummary(result: SwitchoverResult): string {
  const lines = [`${HEADLINE[result.outcome]}: ${result.message}`];
  if (result.outageMs !== undefined)
    lines.push(`write outage: ${duration(result.outageMs)} (fence → ${result.outageEnd})`);
  if (result.frozenPosition) lines.push(`old primary stopped at GTID ${result.frozenPosition}`);
  if (result.sessionsKilled !== undefined) lines.push(`sessions killed: ${result.sessionsKilled}`);
  if (result.repair?.length)
    lines.push(colour.bold('repair steps:'), ...result.repair.map((r, i) => `  ${i + 1}. ${r}`));
  return lines.join('\n');
}

export function renderStatus(status: ServerStatus[]): string {
  const warnings = status.flatMap((s) => s.warnings ?? []).map((w) => `${colour.yellow('warning')}: ${w}`);
  return [
    table(
      ['SERVER', 'ADDRESS', 'ROLE', 'REPLICA OF', 'IO/SQL', 'LAG', 'READ_ONLY', 'GTID EXECUTED', 'GTID APPLIED'],
      status.map((s) => [
        s.name,
        s.address,
        s.role === 'unreachable' ? `${stateColour('down')} ${s.error ?? ''}` : s.role,
        s.replicaOf ?? '-',
        s.replication ? `${s.replication.ioRunning}/${s.replication.sqlRunning}` : '-',
        s.replication ? (s.replication.lagSeconds === null ? '?' : `${s.replication.lagSeconds}s`) : '-',
        s.readOnly === undefined
          ? '-'
          : s.superReadOnly
            ? 'ON (super)'
            : s.readOnly
              ? 'ON'
              : s.role === 'replica'
                ? colour.red('OFF (writable replica)')
                : 'OFF',
        s.executed || '-',
        s.applied || '-',
      ]),
    ),
    ...warnings,
  ].join('\n');
}
