// The embedded store: one JSON file per key under the state directory. Writes are atomic (temp file,
// fsync, rename, fsync of the directory), so the state is intact after `kill -9` or a power cut.
// Revisions are kept inside each file, so compare-and-set works across restarts.
import { EventEmitter } from 'node:events';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import type { PutOptions, Store, StoreLock, Unsubscribe, Versioned } from './store.js';
import { LockHeldError, StoreConflictError } from './errors.js';
import { Serial } from '../serial.js';
import { writeFileAtomic } from '../atomic-file.js';

interface Stored {
  revision: number;
  value: unknown;
  /** Epoch ms after which the key counts as gone (published keys). */
  expiresAt?: number;
}

interface LockFile {
  holder: string;
  pid: number;
  host: string;
  expiresAt: number;
}

const KEY = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

export class FileStore implements Store {
  private readonly changes = new EventEmitter();
  /** Serialises writes so that compare-and-set is atomic within this process. */
  private readonly serial = new Serial();
  private readonly renewals = new Set<NodeJS.Timeout>();
  private readonly heldLocks = new Set<FileLock>();

  private constructor(readonly dir: string) {
    this.changes.setMaxListeners(0);
  }

  get description(): string {
    return `file:${this.dir}`;
  }

  static async open(dir: string): Promise<FileStore> {
    await mkdir(join(dir, 'kv'), { recursive: true, mode: 0o700 });
    await mkdir(join(dir, 'locks'), { recursive: true, mode: 0o700 });
    return new FileStore(dir);
  }

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    const stored = await this.read(key);
    return stored ? { key, value: stored.value as T, revision: stored.revision } : undefined;
  }

  put(key: string, value: unknown, options: PutOptions = {}): Promise<number> {
    return this.serial.run(async () => {
      const current = await this.read(key);
      const revision = current?.revision ?? 0;
      if (options.ifRevision !== undefined && options.ifRevision !== revision) {
        throw new StoreConflictError({ key, expected: options.ifRevision, actual: revision });
      }
      await this.write(key, { revision: revision + 1, value });
      this.changes.emit('change', key, value);
      return revision + 1;
    });
  }

  delete(key: string): Promise<void> {
    return this.serial.run(async () => {
      await rm(this.path(key), { force: true });
      this.changes.emit('change', key, undefined);
    });
  }

  async list<T>(prefix: string): Promise<Versioned<T>[]> {
    const root = join(this.dir, 'kv');
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name.endsWith('.json'))
          keys.push(relative(root, path).slice(0, -'.json'.length).split(sep).join('/'));
      }
    };
    await walk(root);
    const result: Versioned<T>[] = [];
    for (const key of keys.filter((k) => k.startsWith(prefix)).sort()) {
      const item = await this.get<T>(key);
      if (item) result.push(item);
    }
    return result;
  }

  watch(prefix: string, onChange: (key: string, value: unknown) => void): Unsubscribe {
    const listener = (key: string, value: unknown) => {
      if (key.startsWith(prefix)) onChange(key, value);
    };
    this.changes.on('change', listener);
    return () => this.changes.off('change', listener);
  }

  async publish(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    await this.serial.run(async () => {
      const current = await this.read(key);
      await this.write(key, {
        revision: (current?.revision ?? 0) + 1,
        value,
        expiresAt: Date.now() + ttlSeconds * 1000,
      });
    });
    this.changes.emit('change', key, value);
  }

  /**
   * A lock file created exclusively. A lock whose holder process is gone (same host) or whose lease
   * expired is taken over; the holder renews the lease while it runs.
   */
  async lock(name: string, holder: string, ttlSeconds: number): Promise<StoreLock> {
    assertKey(name);
    const path = join(this.dir, 'locks', `${name.replaceAll('/', '~')}.lock`);
    const content = (): LockFile => ({
      holder,
      pid: process.pid,
      host: hostname(),
      expiresAt: Date.now() + ttlSeconds * 1000,
    });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, 'wx', 0o600);
        await handle.writeFile(JSON.stringify(content()));
        await handle.sync();
        await handle.close();
        const lock = new FileLock(name, holder, path, () => {
          clearInterval(timer);
          this.renewals.delete(timer);
          this.heldLocks.delete(lock);
        });
        const timer = setInterval(
          () => void writeFile(path, JSON.stringify(content())).catch(() => undefined),
          (ttlSeconds * 1000) / 3,
        );
        timer.unref();
        this.renewals.add(timer);
        this.heldLocks.add(lock);
        return lock;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const existing = await readLock(path);
        if (existing && !isStale(existing))
          throw new LockHeldError({
            lockName: name,
            holder: `${existing.holder} (pid ${existing.pid} on ${existing.host})`,
          });
        await rm(path, { force: true });
      }
    }
    throw new LockHeldError({ lockName: name, holder: 'another process (lock file keeps reappearing)' });
  }

  async close(): Promise<void> {
    await Promise.all([...this.heldLocks].map((l) => l.release()));
    await this.serial.idle();
  }

  private path(key: string): string {
    assertKey(key);
    return join(this.dir, 'kv', ...key.split('/')) + '.json';
  }

  private async read(key: string): Promise<Stored | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const stored = JSON.parse(text) as Stored;
    if (stored.expiresAt !== undefined && stored.expiresAt < Date.now()) return undefined;
    return stored;
  }

  private async write(key: string, stored: Stored): Promise<void> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // Owner-only like the state directory (0o700), whatever the umask: the store is Dayshift's own state.
    await writeFileAtomic(path, JSON.stringify(stored), { mode: 0o600 });
  }
}

class FileLock implements StoreLock {
  private released = false;
  constructor(
    readonly name: string,
    readonly holder: string,
    private readonly path: string,
    private readonly onRelease: () => void,
  ) {}
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onRelease();
    await rm(this.path, { force: true });
  }
}

async function readLock(path: string): Promise<LockFile | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockFile;
  } catch {
    return undefined;
  }
}

function isStale(lock: LockFile): boolean {
  if (lock.expiresAt < Date.now()) return true;
  if (lock.host !== hostname()) return false;
  try {
    process.kill(lock.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function assertKey(key: string): void {
  if (!KEY.test(key))
    throw new Error(`store: invalid key ${JSON.stringify(key)} (letters, digits, "_", "-", "." and "/" separators)`);
}
