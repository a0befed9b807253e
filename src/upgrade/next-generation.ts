// The next generation of a running Dayshift (`dayshift upgrade`): the program now installed, started
// with the same node options and arguments, given the listening sockets (socket-activation.ts handDown)
// and an IPC channel on which it says once it serves, or why it could not start. It shares this
// process's stdout and stderr, and goes on running after this process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { formatDuration } from '../config/units.js';
import { handDown, type HandedSocket } from '../socket-activation.js';
import { UpgradeFailedError } from './errors.js';

/** A generation of Dayshift: its process and the version it runs. */
export interface Generation {
  pid: number;
  version: string;
}

/** What a next generation tells the one that started it. */
export type GenerationMessage = ({ type: 'ready' } & Generation) | { type: 'failed'; error: string };

/** Set in a next generation's environment: the pid of the generation that started it. */
const PREVIOUS = 'DAYSHIFT_PREVIOUS_GENERATION';

/** How long a failed next generation gets to stop after SIGTERM before SIGKILL. */
const STOP_MS = 10_000;

/**
 * Starts the next generation on `sockets` and resolves once it serves. If it reports a failure, exits,
 * or does not serve within timeoutMs, it is stopped and UpgradeFailedError says why.
 */
export function startNextGeneration(sockets: HandedSocket[], timeoutMs: number): Promise<Generation> {
  const handed = handDown(sockets);
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['ignore', 'inherit', 'inherit', ...handed.fds, 'ipc'],
    env: { ...process.env, ...handed.env, [PREVIOUS]: String(process.pid) },
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const who = child.pid === undefined ? 'the new generation' : `the new generation (pid ${child.pid})`;
      void stop(child).then(() => reject(new UpgradeFailedError(`${who} ${why}; this one serves on`)));
    };
    const timer = setTimeout(() => fail(`did not serve within ${formatDuration(timeoutMs)}`), timeoutMs);
    child.on('message', (message: GenerationMessage) => {
      if (message.type === 'failed') return fail(`could not start: ${message.error}`);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // It runs on by itself: neither the channel nor the child keeps this process from exiting.
      child.disconnect();
      child.unref();
      resolve({ pid: message.pid, version: message.version });
    });
    child.on('exit', (code, signal) =>
      fail(`exited (${signal ?? `code ${code}`}) before it served: its log, beside this one's, says why`),
    );
    child.on('error', (err) => fail(`could not be started: ${err.message}`));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * In a next generation: the pid of the generation that started it, or undefined. Removed from the
 * environment once read, so that release hooks do not see it.
 */
export function previousGeneration(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const pid = env[PREVIOUS];
  delete env[PREVIOUS];
  return pid !== undefined && process.send ? Number(pid) : undefined;
}

/** In a next generation: tells the previous one it serves (or why it cannot), then closes the channel. */
export async function reportToPreviousGeneration(message: GenerationMessage): Promise<void> {
  if (!process.send || !process.connected) return;
  await new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()));
  if (process.connected) process.disconnect();
}
