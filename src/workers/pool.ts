// The workers as the control plane sees them: a ProxyHandle in the main process. The main binds the
// listening sockets and hands them to N worker processes (src/workers/worker.ts), which share their
// accept queues. Desired state goes to every worker and apply() resolves when all have swapped it in;
// health is checked here once and sent to all; figures are gathered from all and merged; a worker that
// dies is replaced at once on the same sockets, logged and audited, while the others keep serving.
// Status lists each worker by number: its process, since when, how often it was replaced, how the last one ended.
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { DayshiftConfig } from '../config/schema.js';
import type { Actor, AuditLog } from '../control/audit.js';
import type { DesiredState, MemberKey } from '../model.js';
import type { HealthReport, ProxyHandle, ProxyStats, SessionObserver } from '../proxy/handle.js';
import type { HandedSocket } from '../socket-activation.js';
import { workerExecArgv } from './exec-argv.js';
import { HealthMonitor } from './health-monitor.js';
import { bindListenSockets, type ListenSocket } from './listen-sockets.js';
import { mergeStats, retire } from './merge.js';
import type { MainMessage, WorkerMessage } from './messages.js';
import type { SharedCertificateTable } from './shared-certificates.js';

/** How many workers `workers` asks for: `auto` is one per core. 1 means no workers: the proxy runs in the main process. */
export function workerCount(setting: DayshiftConfig['workers']): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

export interface WorkerPoolOptions {
  count: number;
  config: LoadedConfig;
  state: DesiredState;
  logger: Logger;
  /** The main's session tracker: workers report the sessions they see to it. */
  sessions: SessionObserver;
  cookieSecret: string;
  audit: AuditLog;
  /** With acme: the main's certificate table, whose changes every worker gets. */
  certificates?: SharedCertificateTable;
}

/** How a worker process ended: killed by a signal, or exited with a code. */
export interface WorkerExit {
  pid: number;
  /** When the main saw it exit. */
  at: string;
  signal?: NodeJS.Signals;
  code?: number;
}

/** A worker as status shows it: the process serving under its number now, and what became of the ones before. */
export interface WorkerStatus {
  /** 1-based; a replacement keeps the number of the worker it replaces. */
  worker: number;
  pid: number;
  /** `exited`: its replacement waits for its backoff (it died before serving). */
  state: 'starting' | 'serving' | 'exited';
  /** When this process was started. */
  startedAt: string;
  /** How many times a worker of this number was replaced since Dayshift started. */
  restarts: number;
  /** How the last process of this number ended, once one has. */
  lastExit?: WorkerExit;
}

type Done = Extract<WorkerMessage, { type: 'done' }>;
type Request = Extract<MainMessage, { seq: number }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Worker {
  index: number;
  child: ChildProcess;
  ready: boolean;
  /** Requests waiting for their `done`, by sequence number; answered undefined if the worker exits. */
  pending: Map<number, (reply: Done | undefined) => void>;
  /** The worker's latest figures. */
  stats?: ProxyStats;
  exited: Promise<void>;
  startedAt: Date;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.js', import.meta.url));
/** The main's Node.js options, less the inspector's and the like (exec-argv.ts). */
const WORKER_EXEC_ARGV = workerExecArgv(process.execArgv);
/** How long a worker may take to start serving. */
const START_MS = 30_000;
/** A worker that does not confirm a change within this is killed: its replacement starts with the change. */
const APPLY_MS = 10_000;
/** How often figures are gathered from the workers for stats() (status, /metrics, the sampler). */
const STATS_MS = 250;
/** A worker that does not send its figures within this counts with its last ones (it may be busy or stopped). */
const STATS_WAIT_MS = 2_000;
/** Replacing a worker that keeps dying at start waits this much more each time, up to 5 s. */
const RESTART_BACKOFF_MS = 100;

const SYSTEM: Actor = { who: 'system', from: 'local' };

export class WorkerPool implements ProxyHandle {
  private readonly workers: Worker[] = [];
  private loaded: LoadedConfig;
  private state: DesiredState;
  private readonly health: HealthMonitor;
  private merged: ProxyStats = { members: [], sites: [] };
  private retired: ProxyStats | undefined;
  private ticketKeys: Buffer | undefined;
  private listening: { http: AddressInfo[]; https: AddressInfo[] } = { http: [], https: [] };
  private closing = false;
  private closed: Promise<void> | undefined;
  private seq = 0;
  private readonly poll: NodeJS.Timeout;
  /** Deaths in a row of a worker slot before it served (a broken start): the replacement's backoff. */
  private readonly quickDeaths = new Map<number, number>();
  /** By worker number: how many times its process was replaced, and how the last one ended. */
  private readonly restarts = new Map<number, number>();
  private readonly lastExits = new Map<number, WorkerExit>();

  private constructor(
    private readonly options: WorkerPoolOptions,
    private readonly listenSockets: ListenSocket[],
  ) {
    this.loaded = options.config;
    this.state = options.state;
    this.health = new HealthMonitor(options.logger, (report) => this.broadcast({ type: 'health', reports: [report] }));
    this.health.sync(this.loaded.config);
    if (options.certificates)
      options.certificates.forward = async (change) => {
        await Promise.all(this.workers.map((w) => this.ask(w, { type: 'certificates', change }, APPLY_MS)));
      };
    let polling = false;
    this.poll = setInterval(() => {
      if (polling) return;
      polling = true;
      void this.refreshStats().finally(() => (polling = false));
    }, STATS_MS);
    this.poll.unref();
  }

  /** Binds the listeners and starts `count` workers on them; fails with the first worker's reason. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const sockets = await bindListenSockets(options.config.config);
    const pool = new WorkerPool(options, sockets);
    try {
      const started = Array.from({ length: options.count }, (_, i) => pool.spawnWorker(i + 1));
      await Promise.all(started.map((w) => pool.whenReady(w)));
    } catch (error) {
      await pool.close(0);
      throw error;
    }
    options.logger.info(
      { workers: pool.workers.map((w) => ({ worker: w.index, pid: w.child.pid })) },
      `${options.count} workers serving`,
    );
    return pool;
  }

  /** The listening sockets the main holds (to hand to the next generation at an upgrade). */
  listeningSockets(): HandedSocket[] {
    return this.listenSockets.map(({ name, fd }) => ({ name, fd }));
  }

  /** The workers' process ids, by worker number (1-based). */
  pids(): number[] {
    return this.workers.map((w) => w.child.pid!);
  }

  /** Every worker, by number, for status and /metrics. */
  workerStatus(): WorkerStatus[] {
    return this.workers.map((w) => {
      const lastExit = this.lastExits.get(w.index);
      const gone = w.child.exitCode !== null || w.child.signalCode !== null;
      return {
        worker: w.index,
        pid: w.child.pid!,
        state: gone ? 'exited' : w.ready ? 'serving' : 'starting',
        startedAt: w.startedAt.toISOString(),
        restarts: this.restarts.get(w.index) ?? 0,
        ...(lastExit ? { lastExit } : {}),
      };
    });
  }

  async apply(config: LoadedConfig, state: DesiredState): Promise<void> {
    const listen = (c: LoadedConfig) => JSON.stringify({ ...c.config.listen, tls: undefined });
    if (config.config !== this.loaded.config && listen(config) !== listen(this.loaded))
      this.options.logger.warn('listen addresses changed: they take effect at the next start');
    this.loaded = config;
    this.state = state;
    this.health.sync(config.config);
    const workerConfig = this.workerConfig();
    const health = this.health.reports();
    const replies = await Promise.all(
      this.workers.map((w) =>
        this.ask(w, { type: 'apply', config: workerConfig, state, health }, APPLY_MS, () => {
          this.options.logger.error(
            { worker: w.index, pid: w.child.pid },
            `worker ${w.index} did not confirm a change within ${APPLY_MS / 1000} s: killed, its replacement starts with the change`,
          );
          w.child.kill('SIGKILL');
        }),
      ),
    );
    const failed = replies.find((r) => r?.error !== undefined);
    if (failed) throw new Error(`the workers could not apply the change: ${failed.error}`);
  }

  stats(): ProxyStats {
    return this.merged;
  }

  async refreshStats(): Promise<void> {
    const ready = this.workers.filter((w) => w.ready);
    const replies = await Promise.all(ready.map((w) => this.ask(w, { type: 'stats' }, STATS_WAIT_MS)));
    replies.forEach((reply, i) => {
      if (reply?.stats) ready[i]!.stats = reply.stats;
    });
    this.merged = mergeStats(
      this.workers.flatMap((w) => (w.stats ? [w.stats] : [])),
      this.retired,
    );
  }

  setHealth(reports: HealthReport[]): void {
    this.broadcast({ type: 'health', reports });
  }

  async closeTunnels(members: MemberKey[], options: { batch: number; intervalMs: number }): Promise<number> {
    const replies = await Promise.all(
      this.workers.map((w) => this.ask(w, { type: 'close-tunnels', members, ...options }, Infinity)),
    );
    return replies.reduce((n, r) => n + (r?.closed ?? 0), 0);
  }

  addresses(): { http: AddressInfo[]; https: AddressInfo[] } {
    return this.listening;
  }

  setTicketKeys(keys: Buffer): void {
    this.ticketKeys = keys;
    this.broadcast({ type: 'ticket-keys', keys });
  }

  /**
   * Tells every worker to stop accepting and finish within graceMs, and waits for them. The main lets its
   * copies of the sockets go at once: when the workers have closed theirs, nothing listens (a next
   * generation that was handed them keeps its own copies).
   */
  close(graceMs: number): Promise<void> {
    this.closed ??= this.stop(graceMs);
    return this.closed;
  }

  private async stop(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.poll);
    this.health.close();
    this.broadcast({ type: 'close', graceMs });
    for (const socket of this.listenSockets) socket.close();
    await Promise.all(
      this.workers.map(async (w) => {
        const late = setTimeout(() => w.child.kill('SIGKILL'), graceMs + 5_000);
        await w.exited;
        clearTimeout(late);
      }),
    );
  }

  /** The config as workers get it: the listeners as bound at start (port 0 resolved), the rest as now. */
  private workerConfig(): LoadedConfig {
    const bound = (name: 'http' | 'https') => this.listenSockets.filter((s) => s.name === name).map((s) => s.listener);
    const config = this.loaded.config;
    return {
      ...this.loaded,
      config: { ...config, listen: { ...config.listen, http: bound('http'), https: bound('https') } },
    };
  }

  private spawnWorker(index: number): Worker {
    // The sockets go at fds 3.., as systemd and handDown() place them; the IPC channel after them.
    const child = spawn(process.execPath, [...WORKER_EXEC_ARGV, WORKER_SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', ...this.listenSockets.map((s) => s.fd), 'ipc'],
      serialization: 'advanced',
    });
    const worker: Worker = {
      index,
      child,
      ready: false,
      pending: new Map(),
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
      startedAt: new Date(),
    };
    this.workers[index - 1] = worker;
    child.on('message', (message: WorkerMessage) => this.receive(worker, message));
    child.on('error', (err) => this.options.logger.error({ err, worker: index }, 'worker process error'));
    child.once('exit', (code, signal) => this.exited(worker, code, signal));
    this.send(worker, {
      type: 'init',
      index,
      config: this.workerConfig(),
      sockets: this.listenSockets.map(({ name, listener }) => ({ name, address: listener })),
      state: this.state,
      cookieSecret: this.options.cookieSecret,
      health: this.health.reports(),
      ...(this.ticketKeys ? { ticketKeys: this.ticketKeys } : {}),
      ...(this.options.certificates ? { certificates: this.options.certificates.changesToStart() } : {}),
    });
    return worker;
  }

  /** Resolves when the worker serves; rejects with why it could not start. */
  private whenReady(worker: Worker): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.child.kill('SIGKILL');
        reject(new Error(`worker ${worker.index} did not start serving within ${START_MS / 1000} s`));
      }, START_MS);
      const failed = (message: WorkerMessage) => {
        if (message.type === 'failed') reject(new Error(message.error));
      };
      worker.child.on('message', failed);
      const settle = () => {
        clearTimeout(timer);
        worker.child.off('message', failed);
      };
      worker.child.once('exit', (code, signal) => {
        settle();
        reject(new Error(`worker ${worker.index} exited at start (${signal ?? `exit code ${code}`})`));
      });
      worker.child.on('message', (message: WorkerMessage) => {
        if (message.type !== 'ready') return;
        settle();
        resolve();
      });
    });
  }

  private receive(worker: Worker, message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        worker.ready = true;
        if (this.listening.http.length + this.listening.https.length === 0)
          this.listening = message.addresses as typeof this.listening;
        return;
      case 'done': {
        const resolve = worker.pending.get(message.seq);
        worker.pending.delete(message.seq);
        resolve?.(message);
        return;
      }
      case 'sessions':
        for (const [member, session, issued, at] of message.events) {
          if (issued) this.options.sessions.issued(member, session, at);
          else this.options.sessions.seen(member, session, at);
        }
        return;
      case 'failed':
        this.options.logger.error({ worker: worker.index }, `worker ${worker.index} cannot start: ${message.error}`);
        return;
    }
  }

  /** A worker exited: its counters are kept, and unless the pool is closing, it is replaced on the same sockets. */
  private exited(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    for (const resolve of worker.pending.values()) resolve(undefined);
    worker.pending.clear();
    if (worker.stats) this.retired = retire(this.retired, worker.stats);
    worker.stats = undefined;
    this.lastExits.set(worker.index, {
      pid: worker.child.pid!,
      at: new Date().toISOString(),
      ...(signal ? { signal } : { code: code ?? 0 }),
    });
    if (this.closing) return;
    if (worker.ready) this.replace(worker, code, signal);
    else this.replaceLater(worker, code, signal);
  }

  private replace(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const how = signal ?? `exit code ${code}`;
    const next = this.spawnWorker(worker.index);
    this.restarts.set(worker.index, (this.restarts.get(worker.index) ?? 0) + 1);
    this.options.logger.error(
      { worker: worker.index, pid: worker.child.pid, exit: how, replacement: next.child.pid },
      `worker ${worker.index} (pid ${worker.child.pid}) died (${how}): replaced by pid ${next.child.pid}; the other workers kept serving`,
    );
    void this.options.audit
      .record(SYSTEM, 'worker replaced', `worker ${worker.index}`, {
        pid: worker.child.pid,
        exit: how,
        replacement: next.child.pid,
      })
      .catch((err: unknown) => this.options.logger.error({ err }, 'could not write the audit log'));
    this.whenReady(next).then(
      () => {
        this.quickDeaths.delete(worker.index);
        this.options.logger.info({ worker: next.index, pid: next.child.pid }, `worker ${next.index} serving`);
      },
      () => undefined,
    );
  }

  /** A worker that died before serving: replaced after a growing pause, so a broken start does not spin. */
  private replaceLater(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const deaths = (this.quickDeaths.get(worker.index) ?? 0) + 1;
    this.quickDeaths.set(worker.index, deaths);
    const ms = Math.min(5_000, RESTART_BACKOFF_MS * 2 ** deaths);
    setTimeout(() => {
      if (!this.closing) this.replace(worker, code, signal);
    }, ms).unref();
  }

  private ask(
    worker: Worker,
    message: DistributiveOmit<Request, 'seq'>,
    timeoutMs: number,
    onTimeout?: () => void,
  ): Promise<Done | undefined> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      const timer =
        timeoutMs === Infinity
          ? undefined
          : setTimeout(() => {
              worker.pending.delete(seq);
              onTimeout?.();
              resolve(undefined);
            }, timeoutMs);
      worker.pending.set(seq, (reply) => {
        if (timer) clearTimeout(timer);
        resolve(reply);
      });
      if (!this.send(worker, { ...message, seq } as Request)) {
        worker.pending.delete(seq);
        if (timer) clearTimeout(timer);
        resolve(undefined);
      }
    });
  }

  private broadcast(message: MainMessage): void {
    for (const worker of this.workers) this.send(worker, message);
  }

  /** False when the worker's channel is gone (it is exiting; its replacement gets the current state). */
  private send(worker: Worker, message: MainMessage): boolean {
    if (!worker.child.connected) return false;
    try {
      worker.child.send(message);
      return true;
    } catch {
      return false;
    }
  }
}
