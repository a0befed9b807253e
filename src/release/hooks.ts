// Runs release hooks and QA commands: a shell command with a timeout, its own process group (so a
// timeout or an abort stops everything it started), and its output captured line by line.
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command was stopped because its timeout passed. */
  timedOut: boolean;
  /** The last lines of stdout and stderr, interleaved as they came. */
  output: string[];
}

export interface RunOptions {
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** Lines kept in the result. */
  keep?: number;
}

/** Time between SIGTERM and SIGKILL when a command is stopped. */
const KILL_GRACE_MS = 3000;

export function runCommand(command: string, options: RunOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    const keep = options.keep ?? 50;
    const output: string[] = [];
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      signalGroup(child.pid, 'SIGTERM');
      killTimer ??= setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeoutMs);
    const onAbort = () => stop();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const collect = (stream: NodeJS.ReadableStream) => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) add(line);
      });
      stream.on('end', () => {
        if (partial) add(partial);
        partial = '';
      });
    };
    const add = (line: string) => {
      const clean = line.replace(/\r$/, '');
      output.push(clean);
      if (output.length > keep) output.shift();
      options.onLine?.(clean);
    };
    collect(child.stdout);
    collect(child.stderr);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) return reject(options.signal.reason);
      resolve({ code, signal, timedOut, output });
    });
  });
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

/** Why a command failed, for a step's detail; undefined when it succeeded. */
export function commandFailure(what: string, result: CommandResult, timeoutMs: number): string | undefined {
  if (result.timedOut) return `${what} timed out after ${Math.round(timeoutMs / 1000)}s and was stopped`;
  if (result.code === 0) return undefined;
  const last = result.output.filter((l) => l.trim() !== '').at(-1);
  const how = result.code !== null ? `exited with ${result.code}` : `was killed by ${result.signal}`;
  return `${what} ${how}${last ? `: ${last}` : ''}`;
}
