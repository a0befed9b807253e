// Replacing a file so that a reader, a crash or a power cut sees either the old content or the new, never
// a mix or an empty file: write a temporary file beside the target, fsync it, rename it over the target
// (atomic within one file system), fsync the directory (else the rename itself may be lost).
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /**
   * The file's permission bits, set exactly (the umask does not apply). Without it, a file that exists
   * keeps its mode and a new one gets the default (0o666 less the umask), as writeFile would give it.
   */
  mode?: number;
}

/**
 * Writes `data` to `path` atomically and durably. The directory must exist. On failure the target is
 * untouched (unless only the final directory fsync failed) and the temporary file is removed.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const mode = options.mode ?? (await existingMode(path));
  // Unique per write: two writers (in this process or another) never share, and so never tear, a temp file.
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  // A temp file that will get a given mode starts private, so a wider default never exposes the content.
  const handle = await open(temp, 'wx', mode === undefined ? 0o666 : 0o600);
  let renamed = false;
  try {
    try {
      if (mode !== undefined) await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    renamed = true;
  } finally {
    if (!renamed) await rm(temp, { force: true });
  }
  await syncDirectory(dir);
}

async function existingMode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
