// Certificate files reloaded when they change, without a restart. The files are polled (stat every
// CHECK_MS) rather than watched with inotify: a stat follows symlinks, so an in-place write, a rename
// over the file, certbot's symlink swap in live/ and Kubernetes' ..data swap of a mounted secret all
// show as a new inode, mtime or size; it works on NFS and bind mounts where inotify is silent, and on
// a directory that is replaced whole. A few stats every two seconds cost nothing.
import { stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';

/** How often the files are looked at. */
export const CHECK_MS = 2000;

/** Files read together (a certificate and its key), and what rebuilds from them. */
export interface WatchedFiles {
  /** The config key, for logs: `sites.shop.tls`, `listen.tls`. */
  where: string;
  paths: string[];
  /** Reads the files again and puts them in force; throws when they are not usable. */
  reload(): void;
}

interface Entry extends WatchedFiles {
  /** The files as last loaded (or as last refused, not to log the same refusal every check). */
  loaded: string;
  /** A new state seen at the previous check: reloaded once it is the same at the next one. */
  seen: string | undefined;
}

function signatureOf(s: { ino: number; mtimeMs: number; size: number } | undefined): string {
  return s ? `${s.ino}:${s.mtimeMs}:${s.size}` : 'missing';
}

async function signature(paths: string[]): Promise<string> {
  const stats = await Promise.all(paths.map((p) => stat(p).catch(() => undefined)));
  return stats.map(signatureOf).join('|');
}

export class CertificateFileWatcher {
  private entries: Entry[] = [];
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  constructor(
    private readonly logger: Logger,
    intervalMs = CHECK_MS,
  ) {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  /** Replaces what is watched (at start and after a reload), as the files are now. */
  watch(files: WatchedFiles[]): void {
    this.entries = files.map((f) => ({
      ...f,
      loaded: f.paths.map((p) => signatureOf(statOrUndefined(p))).join('|'),
      seen: undefined,
    }));
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const entry of this.entries) {
        const now = await signature(entry.paths);
        if (now === entry.loaded) {
          entry.seen = undefined;
          continue;
        }
        // A renewal writes the certificate and the key one after the other: wait until both have
        // settled (unchanged for one check) rather than load a mismatched pair.
        if (now !== entry.seen) {
          entry.seen = now;
          continue;
        }
        entry.loaded = now;
        entry.seen = undefined;
        try {
          entry.reload();
          this.logger.info(
            { where: entry.where, files: entry.paths },
            'certificate files changed: new certificate in force',
          );
        } catch (error) {
          this.logger.error(
            { where: entry.where, err: messageOf(error) },
            'certificate files changed but cannot be used: the previous certificate stays in force; fix the files (checked again when they change)',
          );
        }
      }
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function statOrUndefined(path: string): { ino: number; mtimeMs: number; size: number } | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
