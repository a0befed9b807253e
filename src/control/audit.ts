// The audit log: every change to runtime state — what, who (token name), when, from where — appended as
// one JSON line to <state_dir>/audit.log.
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Actor {
  /** Name of the admin token used, "cli", "release", or "system". */
  who: string;
  /** Client address, or "local". */
  from: string;
}

export interface AuditEntry {
  at: string;
  who: string;
  from: string;
  action: string;
  target: string;
  /** The new value (state, weight, message...). */
  detail?: Record<string, unknown>;
}

export class AuditLog {
  readonly path: string;
  private pending: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.path = join(stateDir, 'audit.log');
  }

  record(actor: Actor, action: string, target: string, detail?: Record<string, unknown>): Promise<void> {
    const entry: AuditEntry = {
      at: new Date().toISOString(),
      who: actor.who,
      from: actor.from,
      action,
      target,
      ...(detail ? { detail } : {}),
    };
    const written = this.pending.then(() => appendFile(this.path, `${JSON.stringify(entry)}\n`, { mode: 0o600 }));
    // One failed write (a full disk) fails that record, not every later one.
    this.pending = written.catch(() => undefined);
    return written;
  }

  /** The most recent entries, newest last. */
  async tail(limit: number): Promise<AuditEntry[]> {
    await this.pending;
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return text
      .split('\n')
      .filter(Boolean)
      .slice(-limit)
      .map((line) => JSON.parse(line) as AuditEntry);
  }
}
