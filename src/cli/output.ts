// What every command shares: --json or human output, tables, colours on a terminal, and exit codes.
import { formatDuration } from '../config/units.js';
import { DayshiftError } from '../errors.js';

/** Exit codes. Scripts can rely on them; they are listed in README.md (exit code table) and docs/control-plane.md. */
export const EXIT = {
  ok: 0,
  /** Something failed at run time (a peer refused, a step failed). */
  failed: 1,
  /** Bad usage or bad input: flags, config file. Nothing was changed. */
  usage: 2,
  /** Refused by a safety rule (e.g. would leave a site with no live cluster); nothing was changed. */
  refused: 3,
  /** A wait ended at its deadline without the condition being met. */
  timeout: 4,
  /** The admin API, its store (etcd) or a database server could not be reached, or the token was refused. */
  unreachable: 5,
  /** A switchover or release was aborted and rolled back: the old state is back. */
  rolledBack: 6,
  /** Failed past the point of no return: repair steps were printed. */
  repair: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends a command with a message and a specific exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.failed,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code for each of Dayshift's error codes a command lets through; any other error exits 1. */
const EXIT_OF_CODE: Readonly<Partial<Record<string, ExitCode>>> = {
  DAYSHIFT_CONFIG: EXIT.usage,
  DAYSHIFT_APACHE_CONF: EXIT.usage,
  DAYSHIFT_SOCKET_ACTIVATION: EXIT.usage,
  DAYSHIFT_MIGRATION_CONFLICT: EXIT.refused,
  DAYSHIFT_STORE_UNAVAILABLE: EXIT.unreachable,
  DAYSHIFT_UPGRADE_REFUSED: EXIT.refused,
  DAYSHIFT_UPGRADE_FAILED: EXIT.failed,
};

/** The one place an error becomes an exit code: CliError carries its own, Dayshift's errors map by code. */
export function exitCodeOf(err: unknown): ExitCode | undefined {
  if (err instanceof CliError) return err.exitCode;
  return err instanceof DayshiftError ? EXIT_OF_CODE[err.code] : undefined;
}

const useColour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
const paint = (code: number) => (text: string) => (useColour ? `\x1b[${code}m${text}\x1b[0m` : text);
export const colour = { red: paint(31), green: paint(32), yellow: paint(33), dim: paint(2), bold: paint(1) };

/** Colours the words operators scan for: states and health. */
export function stateColour(state: string): string {
  if (['live', 'ready', 'up', 'succeeded', 'ok', 'drained', 'serving'].includes(state)) return colour.green(state);
  if (['draining', 'standby', 'waiting', 'running', 'paused', 'unknown', 'starting'].includes(state))
    return colour.yellow(state);
  if (['out', 'disabled', 'down', 'failed', 'aborted', 'refused', 'exited'].includes(state)) return colour.red(state);
  return state;
}

/** Renders rows as an aligned table; widths ignore colour codes. */
export function table(headers: string[], rows: (string | number)[][]): string {
  // eslint-disable-next-line no-control-regex -- colour codes are escape sequences by definition
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const cells = [headers.map((h) => colour.dim(h)), ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => visible(r[i] ?? ''))));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - visible(c))))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function duration(ms: number | undefined): string {
  return ms === undefined ? '-' : formatDuration(ms);
}

/** Prints a result: JSON when asked, else the human rendering. */
export function emit<T>(json: boolean, value: T, human: (value: T) => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human(value)}\n`);
}

/**
 * A progress line that rewrites itself on a terminal. Elsewhere (a log, a pipe) it prints a line when
 * `key` changes (what the line means, without its countdowns; the line itself by default), and otherwise
 * at most every `quietMs`, so a long wait does not fill a log with ticks.
 */
export class Progress {
  private last = '';
  private lastKey = '';
  private printedAt = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quietMs = 10_000,
  ) {}
  update(line: string, key = line): void {
    if (line === this.last) return;
    this.last = line;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`);
      return;
    }
    const now = Date.now();
    if (key === this.lastKey && now - this.printedAt < this.quietMs) return;
    this.lastKey = key;
    this.printedAt = now;
    this.stream.write(`${line}\n`);
  }
  done(line?: string): void {
    if (this.stream.isTTY && this.last) this.stream.write('\r\x1b[2K');
    if (line) this.stream.write(`${line}\n`);
    this.last = '';
  }
}

/** Warnings after a result (advice on a config: src/release/advice.ts), one "warning:" line each. */
export function warningLines(warnings: string[] | undefined): string {
  return (warnings ?? []).map((w) => `\n${colour.yellow(`warning: ${w}`)}`).join('');
}
