// The store layer's errors: a compare-and-set lost, a lock someone else holds, the store out of reach,
// and a migration that would overwrite other values.
import { DayshiftError } from '../errors.js';

/** A compare-and-set write found the key at another revision than the caller read. */
export class StoreConflictError extends DayshiftError {
  readonly code = 'DAYSHIFT_STORE_CONFLICT';
  readonly key: string;
  readonly expected: number;
  readonly actual: number;

  constructor({ key, expected, actual }: { key: string; expected: number; actual: number }) {
    super(`store: ${key} changed concurrently (expected revision ${expected}, found ${actual})`);
    this.key = key;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A named lock (the release, a switchover, ACME) is held by another process; `holder` names it. */
export class LockHeldError extends DayshiftError {
  readonly code = 'DAYSHIFT_LOCK_HELD';
  readonly lockName: string;
  readonly holder: string;

  constructor({ lockName, holder }: { lockName: string; holder: string }) {
    super(`${lockName} is held by ${holder}`);
    this.lockName = lockName;
    this.holder = holder;
  }
}

/** The store (etcd) could not be reached or answered too late; the admin API answers 503, the CLI exits 5. */
export class StoreUnavailableError extends DayshiftError {
  readonly code = 'DAYSHIFT_STORE_UNAVAILABLE';
}

/** The migration's target holds other values for these keys; nothing was copied. */
export class MigrationConflictError extends DayshiftError {
  readonly code = 'DAYSHIFT_MIGRATION_CONFLICT';
  readonly keys: string[];

  constructor({ keys, to }: { keys: string[]; to: string }) {
    super(`${to} already holds ${keys.length} key(s) with other values: ${keys.join(', ')}; nothing was copied`);
    this.keys = keys;
  }
}
