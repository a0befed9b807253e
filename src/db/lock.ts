// The switchover run lock: a Store lock when the caller has a Store (several Dayshift instances), else
// a lock file in the state directory. A lock file whose process is gone (kill -9) is taken over.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockHeldError, type Store, type StoreLock } from '../store/store.js';

export const LOCK_NAME = 'db-switchover';

interface LockFile {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function takeLock(stateDir: string, store?: Store): Promise<StoreLock> {
  const holder = `${hostname()}:${process.pid}`;
  if (store) return store.lock(LOCK_NAME, holder, 3600);
  await mkdir(stateDir, { recursive: true });
  const path = join(stateDir, `${LOCK_NAME}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      const content: LockFile = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
      await handle.writeFile(JSON.stringify(content));
      await handle.sync();
      await handle.close();
      let released = false;
      return {
        name: LOCK_NAME,
        holder,
        async release() {
          if (released) return;
          released = true;
          await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let held: LockFile | undefined;
      try {
        held = JSON.parse(await readFile(path, 'utf8')) as LockFile;
      } catch {
        // Unreadable or half-written: treat as held; an operator removes it after checking.
      }
      if (held && held.host === hostname() && !alive(held.pid)) {
        await rm(path, { force: true });
        continue;
      }
      throw new LockHeldError(LOCK_NAME, held ? `${held.host}:${held.pid} since ${held.started} (${path})` : path);
    }
  }
  throw new LockHeldError(LOCK_NAME, path);
}
