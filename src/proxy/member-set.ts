// The members the proxy forwards to, as runtimes (balance/member.ts) with their transports and health
// checkers, kept in line with the config. A member whose config changed gets a fresh runtime; requests
// in flight finish on the old transport, closed after timeouts.shutdown.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { DayshiftConfig } from '../config/schema.js';
import { HealthChecker, healthCheckFor } from '../balance/health.js';
import { MemberRuntime, type PassivePolicy } from '../balance/member.js';
import { memberId, memberKey, type MemberKey } from '../model.js';
import type { HealthReport } from './handle.js';
import { createTransport, type TransportSettings } from './transport-factory.js';

function transportSettings(config: DayshiftConfig): TransportSettings {
  return {
    connectTimeoutMs: config.timeouts.connect,
    firstByteTimeoutMs: config.timeouts.first_byte,
    idleTimeoutMs: config.timeouts.idle,
    responseHeadBytes: config.limits.response_head,
    poolIdle: config.limits.pool_idle,
    poolMax: config.limits.pool_max,
    queueMax: config.limits.queue,
    queueTimeoutMs: config.timeouts.queue ?? config.timeouts.connect,
  };
}

/** Fails with a clear message when a member's host name does not resolve. */
export async function checkMembersResolve(config: DayshiftConfig): Promise<void> {
  const problems: string[] = [];
  await Promise.all(
    Object.entries(config.clusters).flatMap(([cluster, c]) =>
      c.members.map(async (m, i) => {
        const host = new URL(m.url).hostname.replace(/^\[|\]$/g, '');
        if (isIP(host)) return;
        try {
          await lookup(host);
        } catch (error) {
          problems.push(
            `clusters.${cluster}.members[${i}]: cannot resolve ${host} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
          );
        }
      }),
    ),
  );
  if (problems.length > 0) throw new Error(problems.join('\n'));
}

export class MemberSet {
  readonly runtimes = new Map<MemberKey, MemberRuntime>();
  private readonly checkers = new Map<MemberKey, HealthChecker>();
  /** Passive health (config `passive`): when failed exchanges eject a member, and for how long. */
  passive: PassivePolicy = { failures: 0, ejectionMs: 0, maxEjectionMs: 0 };

  /** `externalHealth`: the members' health is checked elsewhere (a worker's, by the main) and set by setHealth. */
  constructor(
    private readonly logger: Logger,
    private readonly externalHealth = false,
  ) {}

  /** Brings runtimes, transports and health checkers in line with a config. */
  sync(config: DayshiftConfig): void {
    const settings = transportSettings(config);
    const wanted = new Set<MemberKey>();
    for (const [cluster, c] of Object.entries(config.clusters)) {
      c.members.forEach((m, i) => {
        const key = memberKey(cluster, memberId(m.route, i));
        wanted.add(key);
        let runtime = this.runtimes.get(key);
        if (runtime && (runtime.config.url !== m.url || JSON.stringify(runtime.config) !== JSON.stringify(m))) {
          this.retire(runtime, config);
          runtime = undefined;
        }
        if (!runtime) {
          runtime = new MemberRuntime(key, cluster, memberId(m.route, i), m, createTransport(m, settings));
          this.runtimes.set(key, runtime);
          this.checkers.get(key)?.stop();
          this.checkers.delete(key);
        }
        if (this.externalHealth) return;
        const check = healthCheckFor(config, cluster, i);
        const checker = this.checkers.get(key);
        if (!checker || JSON.stringify(checker.check) !== JSON.stringify(check)) {
          checker?.stop();
          const next = new HealthChecker(runtime, check, (member, up, reason) => this.onHealth(member, up, reason));
          this.checkers.set(key, next);
          next.start();
        }
      });
    }
    for (const [key, runtime] of this.runtimes) {
      if (wanted.has(key)) continue;
      this.runtimes.delete(key);
      this.checkers.get(key)?.stop();
      this.checkers.delete(key);
      this.retire(runtime, config);
    }
    this.passive = {
      failures: config.passive.failures,
      ejectionMs: config.passive.ejection,
      maxEjectionMs: config.passive.max_ejection,
    };
  }

  /** The members' health as checked elsewhere (externalHealth). */
  setHealth(reports: HealthReport[]): void {
    const now = Date.now();
    for (const { key, health, reason } of reports) {
      const member = this.runtimes.get(key);
      if (!member) continue;
      member.health = health;
      // A passive ejection's reason is this process's own: the checker's "up" does not erase it.
      if (health === 'down' || member.ejectedUntil <= now) member.healthReason = reason;
    }
  }

  /** Stops the health checks (closing). */
  stopChecks(): void {
    for (const c of this.checkers.values()) c.stop();
  }

  /** Cuts every open tunnel (closing, last stage). */
  cutTunnels(): void {
    for (const m of this.runtimes.values()) for (const t of m.tunnels) t.destroy();
  }

  /** Closes every transport (closing, once nothing is in flight). */
  async close(): Promise<void> {
    this.stopChecks();
    await Promise.all([...this.runtimes.values()].map((m) => m.transport.close().catch(() => undefined)));
  }

  /** A runtime replaced or gone: requests in flight finish on its transport, closed after timeouts.shutdown. */
  private retire(runtime: MemberRuntime, config: DayshiftConfig): void {
    setTimeout(() => void runtime.transport.close(), config.timeouts.shutdown).unref();
  }

  private onHealth(member: MemberRuntime, up: boolean, reason: string | undefined): void {
    if (up) this.logger.info({ member: member.key }, 'member is up');
    else this.logger.warn({ member: member.key, reason }, 'member is down');
  }
}
