// A bounded pool of AJP connections to one member. Idle connections are reused newest first (the ones
// least likely to have been dropped), checked with CPing/CPong before reuse when they sat idle long enough,
// and closed after idleConnectionTimeoutMs. Beyond maxConnections, requests wait in line: at most
// maxQueue of them, each for queueTimeoutMs at most (HAProxy's maxqueue and timeout queue).
import type { Cancellation } from '../member-transport.js';
import { UpstreamError } from '../errors.js';
import { AjpConnection } from './connection.js';

export interface PoolOptions {
  host: string;
  port: number;
  packetSize: number;
  connectTimeoutMs: number;
  maxConnections: number;
  /** Requests waiting for a connection at most; one more fails at once (phase 'queue', kind 'refused'). */
  maxQueue: number;
  /** How long a request may wait for a connection (then phase 'queue', kind 'timeout'). */
  queueTimeoutMs: number;
  maxIdle: number;
  idleConnectionTimeoutMs: number;
  cpingTimeoutMs: number;
  /** An idle connection unused for at least this long is CPinged before reuse (0 = before every reuse). */
  cpingAfterIdleMs: number;
}

export interface PoolStats {
  /** Open connections: idle + busy. */
  open: number;
  idle: number;
  busy: number;
  /** Requests waiting for a connection. */
  waiting: number;
  /** Connections opened since start. */
  opened: number;
  /** Exchanges that ran on a reused connection. */
  reused: number;
  cpings: number;
  cpingFailures: number;
}

interface Waiter {
  wake: () => void;
}

export class AjpPool {
  private readonly idle: AjpConnection[] = [];
  private readonly busy = new Set<AjpConnection>();
  private readonly idleTimers = new Map<AjpConnection, NodeJS.Timeout>();
  private opening = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  private readonly counters = { opened: 0, reused: 0, cpings: 0, cpingFailures: 0 };

  constructor(private readonly options: PoolOptions) {}

  /**
   * A connection for one exchange. `check: false` skips the CPing (the caller pings itself). Rejects with
   * an UpstreamError of phase 'connect' when none can be had.
   */
  async acquire(signal: Cancellation, check = true): Promise<{ connection: AjpConnection; reused: boolean }> {
    /** When the wait for room ends, once the request has had to wait (one deadline across wake-ups). */
    let deadline = 0;
    while (true) {
      if (this.closed) throw new UpstreamError('the AJP transport is closed', { phase: 'connect', kind: 'refused' });
      if (signal.aborted) throw waitAborted(signal);
      const connection = this.idle.pop();
      if (connection) {
        this.takeIdle(connection);
        if (connection.closed) continue;
        this.busy.add(connection);
        if (check && Date.now() - connection.idleSince >= this.options.cpingAfterIdleMs) {
          this.counters.cpings++;
          try {
            await connection.ping(this.options.cpingTimeoutMs);
          } catch {
            // A stale connection (member restarted, socket dropped): discard it and try the next one.
            this.counters.cpingFailures++;
            connection.destroy();
            this.busy.delete(connection);
            continue;
          }
        }
        this.counters.reused++;
        return { connection, reused: true };
      }
      if (this.busy.size + this.opening < this.options.maxConnections) {
        this.opening++;
        try {
          const opened = await AjpConnection.open(this.options.host, this.options.port, {
            packetSize: this.options.packetSize,
            connectTimeoutMs: this.options.connectTimeoutMs,
            signal,
            onClose: (c) => this.forget(c),
          });
          this.counters.opened++;
          if (this.closed) {
            opened.destroy();
            continue;
          }
          this.busy.add(opened);
          return { connection: opened, reused: false };
        } finally {
          this.opening--;
        }
      }
      if (this.waiters.length >= this.options.maxQueue)
        throw new UpstreamError('the member is busy: its AJP connections and queue are full', {
          phase: 'queue',
          kind: 'refused',
        });
      deadline ||= Date.now() + this.options.queueTimeoutMs;
      await this.waitForRoom(signal, deadline);
    }
  }

  /** Hands a connection back after its exchange; reusable ones go idle, others are closed. */
  release(connection: AjpConnection, reusable: boolean): void {
    this.busy.delete(connection);
    if (reusable && !this.closed && !connection.closed && this.idle.length < this.options.maxIdle) {
      connection.setIdle(true);
      this.idle.push(connection);
      this.idleTimers.set(
        connection,
        setTimeout(() => connection.destroy(), this.options.idleConnectionTimeoutMs).unref(),
      );
    } else {
      connection.destroy();
    }
    this.wakeOne();
  }

  stats(): PoolStats {
    return {
      open: this.idle.length + this.busy.size,
      idle: this.idle.length,
      busy: this.busy.size,
      waiting: this.waiters.length,
      ...this.counters,
    };
  }

  /** Closes idle connections now; busy ones close when their exchange ends. New acquires are refused. */
  close(): void {
    this.closed = true;
    for (const connection of this.idle.splice(0)) {
      this.takeIdle(connection);
      connection.destroy();
    }
    for (const waiter of this.waiters.splice(0)) waiter.wake();
  }

  private takeIdle(connection: AjpConnection): void {
    clearTimeout(this.idleTimers.get(connection));
    this.idleTimers.delete(connection);
    connection.setIdle(false);
  }

  private forget(connection: AjpConnection): void {
    const i = this.idle.indexOf(connection);
    if (i >= 0) {
      this.idle.splice(i, 1);
      this.takeIdle(connection);
    }
    if (this.busy.delete(connection)) this.wakeOne();
  }

  private wakeOne(): void {
    this.waiters.shift()?.wake();
  }

  private waitForRoom(signal: Cancellation, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const leave = (error: UpstreamError): void => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(error);
      };
      const onAbort = (): void => leave(waitAborted(signal));
      const timer = setTimeout(
        () => {
          signal.removeEventListener('abort', onAbort);
          leave(
            new UpstreamError('the member is busy: no AJP connection free within timeouts.queue', {
              phase: 'queue',
              kind: 'timeout',
            }),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      const waiter: Waiter = {
        wake: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal.addEventListener('abort', onAbort);
      this.waiters.push(waiter);
    });
  }
}

function waitAborted(signal: Cancellation): UpstreamError {
  const reason: unknown = signal.reason;
  if (reason instanceof UpstreamError) return reason;
  const timeout = reason instanceof Error && reason.name === 'TimeoutError';
  return new UpstreamError(timeout ? 'timed out waiting for an AJP connection' : 'the request was aborted', {
    phase: 'connect',
    kind: timeout ? 'timeout' : 'network',
    cause: reason,
  });
}
