// The sessions bound to members, handed from one generation to the next through the state directory: a
// drain under way across an upgrade (a release's) still waits for the users the old generation saw, since
// the new one only tracks sessions it knows were issued (session-tracker.ts).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { SessionEntry, SessionTracker } from '../control/session-tracker.js';

const FILE = 'sessions.handover.json';

/** Written by the old generation before it starts the next one. */
export async function handSessionsOver(stateDir: string, tracker: SessionTracker): Promise<void> {
  await writeFileAtomic(join(stateDir, FILE), JSON.stringify(tracker.entries()), { mode: 0o600 });
}

/** Read (and removed) by the next generation as it starts; returns how many sessions it took over. */
export async function adoptHandedSessions(stateDir: string, tracker: SessionTracker): Promise<number> {
  const path = join(stateDir, FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  await rm(path, { force: true });
  const entries = JSON.parse(text) as SessionEntry[];
  tracker.adopt(entries);
  return entries.length;
}

/** The next generation did not start: nobody takes the sessions over. */
export async function dropHandedSessions(stateDir: string): Promise<void> {
  await rm(join(stateDir, FILE), { force: true });
}
