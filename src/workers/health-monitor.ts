// Health checks in the main process: each member is checked once, whatever the number of workers, and
// every change is sent to all of them (a member is down everywhere at once, and members see one check
// per interval, not one per worker). Passive ejections stay each worker's own (docs/operations.md).
import type { Logger } from 'pino';
import type { DayshiftConfig } from '../config/schema.js';
import { HealthChecker, healthCheckFor } from '../balance/health.js';
import { MemberRuntime } from '../balance/member.js';
import { memberId, memberKey, type MemberKey } from '../model.js';
import type { HealthReport } from '../proxy/handle.js';
import { createTransport } from '../proxy/transport-factory.js';

export class HealthMonitor {
  private readonly members = new Map<MemberKey, { runtime: MemberRuntime; checker: HealthChecker }>();

  constructor(
    private readonly logger: Logger,
    private readonly onChange: (report: HealthReport) => void,
  ) {}

  /** Brings the checks in line with a config: new members checked, removed ones forgotten, changed ones checked anew. */
  sync(config: DayshiftConfig): void {
    const wanted = new Set<MemberKey>();
    for (const [cluster, c] of Object.entries(config.clusters)) {
      c.members.forEach((m, i) => {
        const key = memberKey(cluster, memberId(m.route, i));
        wanted.add(key);
        const check = healthCheckFor(config, cluster, i);
        const current = this.members.get(key);
        if (
          current &&
          JSON.stringify(current.runtime.config) === JSON.stringify(m) &&
          JSON.stringify(current.checker.check) === JSON.stringify(check)
        )
          return;
        if (current) this.forget(key);
        // The transport only serves the checks' pings (AJP); HTTP checks make their own requests.
        const transport = createTransport(m, {
          connectTimeoutMs: check.timeout,
          firstByteTimeoutMs: check.timeout,
          idleTimeoutMs: check.timeout,
          responseHeadBytes: config.limits.response_head,
          poolIdle: 1,
          poolMax: 1,
          queueMax: 1,
          queueTimeoutMs: check.timeout,
        });
        const runtime = new MemberRuntime(key, cluster, memberId(m.route, i), m, transport);
        const checker = new HealthChecker(runtime, check, (member, up, reason) => {
          if (up) this.logger.info({ member: member.key }, 'member is up');
          else this.logger.warn({ member: member.key, reason }, 'member is down');
          this.onChange(reportOf(member));
        });
        this.members.set(key, { runtime, checker });
        checker.start();
      });
    }
    for (const key of this.members.keys()) if (!wanted.has(key)) this.forget(key);
  }

  /** Every member's health now (`unknown` until its first check). */
  reports(): HealthReport[] {
    return [...this.members.values()].map(({ runtime }) => reportOf(runtime));
  }

  close(): void {
    for (const key of [...this.members.keys()]) this.forget(key);
  }

  private forget(key: MemberKey): void {
    const entry = this.members.get(key);
    if (!entry) return;
    entry.checker.stop();
    void entry.runtime.transport.close().catch(() => undefined);
    this.members.delete(key);
  }
}

function reportOf(member: MemberRuntime): HealthReport {
  return {
    key: member.key,
    health: member.health,
    ...(member.health === 'down' && member.healthReason ? { reason: member.healthReason } : {}),
  };
}
