// Session resumption across instances: one TLS session ticket key, kept in the store, shared by every
// instance (and, later, every worker process) and replaced every tls.ticket_rotation. Whoever finds the
// key due first replaces it (a compare-and-set write, so one replacement wins); the others follow
// through the store's watch. Node holds one key at a time, so tickets issued under the previous key
// stop resuming at a rotation: those clients do one full handshake.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { StoreConflictError } from '../store/errors.js';
import type { Store, Unsubscribe } from '../store/store.js';
import { messageOf } from '../errors.js';

export const TICKET_KEY = 'tls/ticket-key';

/** Node's ticket key: 16 bytes of name, 16 of HMAC secret, 16 of AES key. */
const KEY_BYTES = 48;
/** After a failed store read or write, try again this soon. */
const RETRY_MS = 30_000;
/**
 * After writing a new key, read it back this soon: a store without an atomic compare-and-set across
 * processes (the file store shared by two processes) may have kept another instance's write.
 */
const CONFIRM_MS = 5_000;

interface StoredKey {
  /** base64 of the 48 bytes. */
  key: string;
  /** When it was made (ISO): it is replaced at created + rotation. */
  created: string;
}

export interface TicketKeyOptions {
  store: Store;
  logger: Logger;
  rotationMs: () => number;
  /** Puts a key in force (every https listener of this process). */
  apply(key: Buffer): void;
}

export class TicketKeyRotation {
  private timer: NodeJS.Timeout | undefined;
  private unwatch: Unsubscribe | undefined;
  private current: StoredKey | undefined;
  private closed = false;

  constructor(private readonly options: TicketKeyOptions) {}

  /** Takes the shared key (making one if there is none or it is due) and follows its changes. */
  async start(): Promise<void> {
    this.unwatch = this.options.store.watch(
      TICKET_KEY,
      (_key, value) => {
        if (value !== undefined) this.use(value as StoredKey);
      },
      () => void this.review(),
    );
    await this.review();
  }

  /** Reads the stored key; replaces it when missing or due; arms the next review. */
  private async review(): Promise<void> {
    if (this.closed) return;
    let delay = RETRY_MS;
    try {
      const stored = await this.options.store.get<StoredKey>(TICKET_KEY);
      const due = stored ? Date.parse(stored.value.created) + this.options.rotationMs() : 0;
      if (stored && due > Date.now()) {
        this.use(stored.value);
        delay = due - Date.now();
      } else {
        const fresh: StoredKey = { key: randomBytes(KEY_BYTES).toString('base64'), created: new Date().toISOString() };
        try {
          await this.options.store.put(TICKET_KEY, fresh, { ifRevision: stored?.revision ?? 0 });
          this.use(fresh);
          delay = Math.min(CONFIRM_MS, this.options.rotationMs());
        } catch (error) {
          // Another instance replaced it first: take theirs.
          if (!(error instanceof StoreConflictError)) throw error;
          delay = 0;
        }
      }
    } catch (error) {
      this.options.logger.warn(
        { err: messageOf(error) },
        'the session ticket key could not be read or replaced in the store: the one in force stays; trying again in 30s',
      );
    }
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    // A little spread, so that instances do not all try the replacement in the same millisecond.
    this.timer = setTimeout(() => void this.review(), delay + Math.floor(Math.random() * 1000));
    this.timer.unref();
  }

  private use(stored: StoredKey): void {
    if (this.current?.key === stored.key) return;
    const key = Buffer.from(stored.key, 'base64');
    if (key.length !== KEY_BYTES) {
      this.options.logger.warn(
        { key: TICKET_KEY, bytes: key.length },
        `the stored session ticket key is not ${KEY_BYTES} bytes: ignored`,
      );
      return;
    }
    this.current = stored;
    this.options.apply(key);
    this.options.logger.info({ created: stored.created }, 'session ticket key in force');
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.unwatch?.();
  }
}
