// The switchover journal: which phase a run reached, written and fsynced before each phase starts, so
// that `--resume` after a crash knows whether to roll back or to finish.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';

/**
 * fencing: the old primary may be read-only; the replica is untouched → rollback A.
 * promoting: the replica may be promoted; the endpoint has not moved → rollback B.
 * publishing: the endpoint may have moved → forward if anything was written to the new primary, else B.
 * published: point of no return passed → forward (re-attach the old primary).
 */
export type Phase = 'fencing' | 'promoting' | 'publishing' | 'published';

export interface Journal {
  id: string;
  from: string;
  to: string;
  phase: Phase;
  started: string;
  /** The old primary's frozen GTID position, once read. */
  frozenPos?: string;
}

export const journalPath = (stateDir: string) => join(stateDir, 'db-switchover.journal.json');

export async function readJournal(stateDir: string): Promise<Journal | undefined> {
  try {
    return JSON.parse(await readFile(journalPath(stateDir), 'utf8')) as Journal;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Atomic and durable: `--resume` after a crash or a power cut must find the phase the run reached. */
export async function writeJournal(stateDir: string, journal: Journal): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await writeFileAtomic(journalPath(stateDir), `${JSON.stringify(journal, null, 2)}\n`);
}

export async function clearJournal(stateDir: string): Promise<void> {
  await rm(journalPath(stateDir), { force: true });
}
