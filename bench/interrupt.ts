// SIGINT or SIGTERM to the bench: each part registers how to stop what it started, and an interruption
// runs all of those (children stopped and waited for, directories removed) before exiting with
// 128 + the signal's number, instead of leaving the children running.
import { constants } from 'node:os';

const cleanups = new Set<() => Promise<unknown>>();
let interruption: Promise<never> | undefined;

/** Runs `cleanup` if the bench is interrupted before the returned function is called. */
export function onInterrupt(cleanup: () => Promise<unknown>): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Installs the SIGINT and SIGTERM handlers (a second signal during the cleanup changes nothing). */
export function handleInterrupts(log: (line: string) => void): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    interruption ??= (async () => {
      log(`${signal}: stopping the bench's processes`);
      await Promise.allSettled([...cleanups].map((cleanup) => cleanup()));
      process.exit(128 + constants.signals[signal]);
    })();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
}

/** After an interruption, never settles (the process exits when the cleanup is done). */
export async function interrupted(): Promise<void> {
  if (interruption) await interruption;
}
