// The store shared by several Dayshift instances: etcd 3 through the `etcd3` client.
//
// Layout under the prefix (e.g. /dayshift/prod/): `kv/<key>` holds each JSON document, `locks/<name>`
// each lock. Revisions are etcd mod revisions, so compare-and-set is a transaction comparing them.
// Published figures and locks hang off etcd leases that this process keeps alive: when it dies, etcd
// drops them after the lease TTL. Every call has a deadline and every failure to reach etcd surfaces as
// StoreUnavailableError naming the endpoints and the operation: a caller never waits forever.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as unrefTimeout } from 'node:timers/promises';
import { delay } from '../delay.js';
import { rootCertificates } from 'node:tls';
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  retry,
} from 'cockatiel';
import {
  Etcd3,
  EtcdLeaseInvalidError,
  isRecoverableError,
  type IKeyValue,
  type IOptions,
  type Lease,
  type Watcher,
} from 'etcd3';
import type { PutOptions, Store, StoreLock, Unsubscribe, Versioned } from './store.js';
import { LockHeldError, StoreConflictError, StoreUnavailableError } from './errors.js';
import { messageOf } from '../errors.js';

export interface EtcdStoreOptions {
  /** Client URLs: http://host:2379, or https:// with `tls`. */
  endpoints: string[];
  /** Key prefix of this Dayshift installation, e.g. `/dayshift/prod/`. A trailing `/` is added. */
  prefix: string;
  /** PEM file paths: `ca` to verify etcd's certificate, `cert` + `key` for client-certificate auth. */
  tls?: { ca?: string; cert?: string; key?: string };
  auth?: { username: string; password: string };
  /** How long open() waits for a first answer from etcd. */
  dialTimeoutMs?: number;
  /** Deadline of each try; with two retries on other endpoints, a call fails after at most about 3× this. */
  requestTimeoutMs?: number;
  /** When set, the TTL (seconds) of every lease, instead of the one callers ask for. */
  leaseTtlSeconds?: number;
}

const DEFAULT_DIAL_TIMEOUT_MS = 5000;
const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
const DIAL_RETRY_PAUSE_MS = 200;
/** Retries of a failed call (on other endpoints) by the etcd3 client. */
const RETRIES = 2;
/** Longest pause between watch reconnection attempts, which bounds how late a resync comes after etcd returns. */
const WATCH_MAX_BACKOFF_MS = 2000;

interface LockValue {
  holder: string;
  pid: number;
  host: string;
  since: string;
}

export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly root: string;
  private readonly requestTimeoutMs: number;
  /** One lease per TTL for published keys, granted on first use and replaced if lost. */
  private readonly publishLeases = new Map<number, Lease>();
  private readonly heldLocks = new Set<EtcdLock>();
  private readonly watchers = new Set<() => Promise<void>>();
  private closed = false;
  /** The last error etcd calls failed with, quoted when the circuit breaker refuses calls outright. */
  private lastFailure: string | undefined;

  private constructor(private readonly options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new StoreUnavailableError('etcd store: no endpoints configured');
    this.root = options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    try {
      this.client = new Etcd3(clientOptions(options, this.requestTimeoutMs));
    } catch (err) {
      // e.g. a mix of http:// and https:// endpoints, which the client refuses.
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`etcd store (${options.endpoints.join(', ')}): ${messageOf(err)}`, {
        cause: err,
      });
    }
  }

  /** Connects, trying again until etcd answers or the dial timeout has passed. */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(options);
    const dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    const end = Date.now() + dialTimeoutMs;
    for (;;) {
      const left = Math.max(1, end - Date.now());
      try {
        await store.call(`connect (dial timeout ${dialTimeoutMs} ms)`, left, () =>
          store.client
            .get(`${store.root}kv/`)
            .options({ deadline: Date.now() + Math.min(left, store.requestTimeoutMs) })
            .exec(),
        );
        return store;
      } catch (err) {
        // Refusals (a member just restarting, a connection in back-off) are worth another try; an
        // answer such as "authentication failed" or "permission denied" is not.
        const retryable = err instanceof StoreUnavailableError && (err.cause === undefined || isRecoverable(err.cause));
        if (!retryable || Date.now() + DIAL_RETRY_PAUSE_MS >= end) {
          await store.close();
          throw err;
        }
        await delay(DIAL_RETRY_PAUSE_MS);
      }
    }
  }

  get description(): string {
    const n = this.options.endpoints.length;
    return `etcd:${n} endpoint${n === 1 ? '' : 's'} ${this.root}`;
  }

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    const response = await this.call(`get ${key}`, this.callBudget(), () => this.client.get(this.kvKey(key)).exec());
    const kv = response.kvs[0];
    return kv ? this.versioned<T>(kv) : undefined;
  }

  async put(key: string, value: unknown, options: PutOptions = {}): Promise<number> {
    const full = this.kvKey(key);
    const text = JSON.stringify(value);
    const expected = options.ifRevision;
    if (expected === undefined) {
      const response = await this.call(`put ${key}`, this.callBudget(), () => this.client.put(full).value(text).exec());
      return Number(response.header.revision);
    }
    // mod_revision of a missing key compares as 0; create_revision == 0 says "must not exist".
    const response = await this.call(`put ${key} (if revision ${expected})`, this.callBudget(), () =>
      this.client
        .if(full, expected === 0 ? 'Create' : 'Mod', '==', expected)
        .then(this.client.put(full).value(text))
        .else(this.client.get(full))
        .commit(),
    );
    if (!response.succeeded) {
      const current = response.responses[0]?.response_range?.kvs[0];
      throw new StoreConflictError({ key, expected, actual: current ? Number(current.mod_revision) : 0 });
    }
    return Number(response.header.revision);
  }

  async delete(key: string): Promise<void> {
    await this.call(`delete ${key}`, this.callBudget(), () => this.client.delete().key(this.kvKey(key)).exec());
  }

  async list<T>(prefix: string): Promise<Versioned<T>[]> {
    const response = await this.call(`list ${prefix || '(all)'}`, this.callBudget(), () =>
      this.client.getAll().prefix(this.kvKey(prefix)).sort('Key', 'Ascend').exec(),
    );
    return response.kvs.map((kv) => this.versioned<T>(kv));
  }

  /**
   * Follows changes under prefix. The etcd3 client re-creates the watch after a lost connection and
   * resumes from the last revision seen; `onResync` is then called so that the caller can reload the
   * full state (e.g. with list()) in case it missed anything while etcd was away.
   */
  watch(prefix: string, onChange: (key: string, value: unknown) => void, onResync?: () => void): Unsubscribe {
    let watcher: Watcher | undefined;
    let disconnected = false;
    let stopped = false;
    const start = (): void => {
      const current = this.client.watch().prefix(this.kvKey(prefix)).watcher();
      watcher = current;
      // Events already on their way when the caller unsubscribed are not delivered.
      current.on('put', (kv) => stopped || onChange(this.userKey(kv.key), parse(kv.value.toString())));
      current.on('delete', (kv) => stopped || onChange(this.userKey(kv.key), undefined));
      current.on('disconnected', () => {
        disconnected = true;
      });
      current.on('connected', () => {
        if (!disconnected) return;
        disconnected = false;
        onResync?.();
      });
      // etcd cancelled the watch (e.g. its revision was compacted away): start a new one and resync.
      current.on('error', () => {
        if (stopped || watcher !== current) return;
        disconnected = true;
        start();
      });
    };
    start();
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      this.watchers.delete(stop);
      await watcher?.cancel().catch(() => undefined);
    };
    this.watchers.add(stop);
    return () => void stop();
  }

  async publish(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    const ttl = this.leaseTtl(ttlSeconds);
    const full = this.kvKey(key);
    const text = JSON.stringify(value);
    await this.call(`publish ${key} (lease TTL ${ttl} s)`, this.callBudget(2), async () => {
      try {
        await this.publishLease(ttl).put(full).value(text).exec();
      } catch (err) {
        // The lease expired while etcd was out of reach: take a new one and write again.
        if (!(err instanceof EtcdLeaseInvalidError)) throw err;
        this.dropPublishLease(ttl);
        await this.publishLease(ttl).put(full).value(text).exec();
      }
    });
  }

  async lock(name: string, holder: string, ttlSeconds: number): Promise<StoreLock> {
    const ttl = this.leaseTtl(ttlSeconds);
    const full = `${this.root}locks/${name}`;
    const value: LockValue = { holder, pid: process.pid, host: hostname(), since: new Date().toISOString() };
    const lease = this.client.lease(ttl, { deadline: Date.now() + this.requestTimeoutMs });
    lease.on('lost', () => undefined);
    try {
      const leaseId = await this.call(`lock ${name}: lease grant`, this.callBudget(), () => lease.grant());
      const response = await this.call(`lock ${name}`, this.callBudget(), () =>
        this.client
          .if(full, 'Create', '==', 0)
          .then(this.client.put(full).value(JSON.stringify(value)).lease(leaseId))
          .else(this.client.get(full))
          .commit(),
      );
      if (!response.succeeded) {
        const kv = response.responses[0]?.response_range?.kvs[0];
        throw new LockHeldError({
          lockName: name,
          holder: kv ? describeHolder(kv.value.toString()) : 'another instance (it let go just now; try again)',
        });
      }
    } catch (err) {
      await lease.revoke({ deadline: Date.now() + this.requestTimeoutMs }).catch(() => undefined);
      throw err;
    }
    const leaseId = await lease.grant();
    const held = async (): Promise<boolean> => {
      const response = await this.call(`lock ${name}: check`, this.callBudget(), () => this.client.get(full).exec());
      return response.kvs[0]?.lease === leaseId;
    };
    const lock = new EtcdLock(name, holder, lease, this.requestTimeoutMs, held, () => this.heldLocks.delete(lock));
    this.heldLocks.add(lock);
    return lock;
  }

  /** Revokes this process's leases (published keys and locks go at once) and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deadline = Date.now() + this.requestTimeoutMs;
    // Cancelling a watch waits for etcd to confirm; an etcd that does not answer must not hold close() up.
    await Promise.race([
      Promise.all([...this.watchers].map((stop) => stop())),
      unrefTimeout(this.requestTimeoutMs, undefined, { ref: false }),
    ]);
    await Promise.all([...this.heldLocks].map((lock) => lock.release().catch(() => undefined)));
    await Promise.all(
      [...this.publishLeases.values()].map((lease) => lease.revoke({ deadline }).catch(() => undefined)),
    );
    this.publishLeases.clear();
    this.client.close();
  }

  private publishLease(ttl: number): Lease {
    let lease = this.publishLeases.get(ttl);
    if (!lease || lease.revoked()) {
      const created = this.client.lease(ttl, { deadline: Date.now() + this.requestTimeoutMs });
      created.on('lost', () => {
        if (this.publishLeases.get(ttl) === created) this.publishLeases.delete(ttl);
      });
      this.publishLeases.set(ttl, created);
      lease = created;
    }
    return lease;
  }

  private dropPublishLease(ttl: number): void {
    this.publishLeases.get(ttl)?.release();
    this.publishLeases.delete(ttl);
  }

  private leaseTtl(requested: number): number {
    return Math.max(1, Math.ceil(this.options.leaseTtlSeconds ?? requested));
  }

  /** Time a whole operation may take: every try has a deadline, and the client retries on other endpoints. */
  private callBudget(steps = 1): number {
    return steps * ((RETRIES + 1) * this.requestTimeoutMs + 500);
  }

  private kvKey(key: string): string {
    return `${this.root}kv/${key}`;
  }

  private userKey(full: Buffer): string {
    return full.toString().slice(`${this.root}kv/`.length);
  }

  private versioned<T>(kv: IKeyValue): Versioned<T> {
    return { key: this.userKey(kv.key), value: parse(kv.value.toString()) as T, revision: Number(kv.mod_revision) };
  }

  /** Runs one operation against etcd with an overall time limit, turning failures into StoreUnavailableError. */
  private async call<T>(what: string, budgetMs: number, run: () => Promise<T>): Promise<T> {
    const where = `etcd (${this.options.endpoints.join(', ')})`;
    if (this.closed && what !== 'connect') throw new StoreUnavailableError(`${where}: ${what}: the store is closed`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `${where}: ${what}: no answer within ${budgetMs} ms${what.startsWith('put') || what.startsWith('delete') ? ' (the change may or may not have been applied)' : ''}`,
            ),
          ),
        budgetMs,
      );
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (err) {
      if (err instanceof StoreUnavailableError || err instanceof StoreConflictError || err instanceof LockHeldError)
        throw err;
      if (isBrokenCircuitError(err)) {
        // The client did not even try: say why the endpoints were given up on.
        throw new StoreUnavailableError(
          `${where}: ${what} failed: every endpoint failed just before (${this.lastFailure ?? 'no error recorded'}); each is tried again after 1 s`,
          { cause: err },
        );
      }
      this.lastFailure = explain(err);
      throw new StoreUnavailableError(`${where}: ${what} failed: ${this.lastFailure}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

class EtcdLock implements StoreLock {
  private released = false;
  constructor(
    readonly name: string,
    readonly holder: string,
    private readonly lease: Lease,
    private readonly timeoutMs: number,
    private readonly check: () => Promise<boolean>,
    private readonly onRelease: () => void,
  ) {}

  /** True while the lock key exists and belongs to this lock's lease. */
  async held(): Promise<boolean> {
    return !this.released && (await this.check());
  }

  /** Revokes the lease, which deletes the lock key; if etcd is unreachable the lease simply expires. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onRelease();
    await this.lease.revoke({ deadline: Date.now() + this.timeoutMs }).catch(() => this.lease.release());
  }
}

function clientOptions(options: EtcdStoreOptions, requestTimeoutMs: number): IOptions {
  const result: IOptions = {
    hosts: options.endpoints,
    grpcOptions: {
      // gRPC's reconnection back-off grows to 2 minutes by default: cap it so that a member coming back
      // is used again within seconds.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': WATCH_MAX_BACKOFF_MS,
      // Pings on active streams (watch, lease keep-alive) notice a member that vanished without closing
      // its connections (host down, network cut). etcd refuses pings more often than every 5 s.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5000,
    },
    // Unary calls get a deadline; streams (watch, lease keep-alive) live on and reconnect by themselves.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    faultHandling: {
      // Two retries, each on another endpoint: a member that just died fails at once, and a survivor
      // waiting for a new leader (about 1 s after a crash) answers by the last try.
      global: retry(handleWhen(isRecoverableError), { maxAttempts: RETRIES }),
      // A failing endpoint is skipped for a second, then tried again: etcd coming back is noticed quickly.
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      // etcd3 types this as a backoff step and calls next() on it for each reconnection.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: WATCH_MAX_BACKOFF_MS }).next(),
    },
  };
  if (options.tls) {
    const { ca, cert, key } = options.tls;
    result.credentials = {
      rootCertificate: readPem(ca, 'tls.ca'),
      ...(cert ? { certChain: readPem(cert, 'tls.cert') } : {}),
      ...(key ? { privateKey: readPem(key, 'tls.key') } : {}),
    };
  }
  if (options.auth) {
    result.auth = { ...options.auth, callOptions: () => ({ deadline: Date.now() + requestTimeoutMs }) };
  }
  return result;
}

function readPem(path: string | undefined, what: string): Buffer {
  // gRPC needs a root certificate buffer; without a ca file, Node's bundled public roots are used.
  if (path === undefined) return Buffer.from(rootCertificates.join('\n'));
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StoreUnavailableError(`etcd store: cannot read ${what} file ${path}: ${messageOf(err)}`, { cause: err });
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A value written by hand with etcdctl that is not JSON: hand it over as the string it is.
    return text;
  }
}

function describeHolder(text: string): string {
  const value = parse(text) as Partial<LockValue> | string;
  if (typeof value !== 'object' || value === null || typeof value.holder !== 'string') return String(text);
  return value.pid !== undefined && value.host !== undefined
    ? `${value.holder} (pid ${value.pid} on ${value.host})`
    : value.holder;
}

function isRecoverable(err: unknown): boolean {
  return err instanceof Error && (isRecoverableError(err) || isBrokenCircuitError(err));
}

function explain(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // etcd3's error classes keep the name "Error"; the class name says more (GRPCUnavailableError...).
  return `${err.constructor.name}: ${err.message}`;
}
