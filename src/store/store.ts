// The store keeps desired runtime state and the release journal. One interface, two implementations:
// the embedded file store (one machine) and etcd (several Dayshift instances). Callers never know which.

/** A stored JSON document with the revision it was read at. */
export interface Versioned<T> {
  key: string;
  value: T;
  revision: number;
}

export interface PutOptions {
  /** Compare-and-set: write only if the key is still at this revision (0 = must not exist). */
  ifRevision?: number;
}

export interface StoreLock {
  readonly name: string;
  readonly holder: string;
  /** Gives the lock up. Safe to call twice. */
  release(): Promise<void>;
  /**
   * Whether this holder still has the lock, asked of the store itself. A lock can be lost without
   * release(): its lease expired while the store was out of reach. A conductor checks before each step.
   */
  held?(): Promise<boolean>;
}

export type Unsubscribe = () => void;

export interface Store {
  /** Short description for status output, e.g. `file:/var/lib/dayshift` or `etcd:3 endpoints`. */
  readonly description: string;
  get<T>(key: string): Promise<Versioned<T> | undefined>;
  /** Writes and returns the new revision. Resolves only once the write is durable. */
  put(key: string, value: unknown, options?: PutOptions): Promise<number>;
  delete(key: string): Promise<void>;
  list<T>(prefix: string): Promise<Versioned<T>[]>;
  /**
   * Calls back on every change under prefix (value undefined = deleted), from this or another process.
   * `onResync` is called after the store was out of reach and the watch is live again: changes may have
   * been missed, so the caller reloads what it needs with list().
   */
  watch(prefix: string, onChange: (key: string, value: unknown) => void, onResync?: () => void): Unsubscribe;
  /**
   * Writes a value that disappears when this process stops renewing it (an etcd lease, or an expiry
   * time in the file store). Used for each instance's live figures.
   */
  publish(key: string, value: unknown, ttlSeconds: number): Promise<void>;
  /** Takes a named lock or throws LockHeldError naming the holder. Released on close or process death. */
  lock(name: string, holder: string, ttlSeconds: number): Promise<StoreLock>;
  close(): Promise<void>;
}
