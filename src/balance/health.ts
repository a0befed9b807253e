// Active health checks: one timer per member, a request (or the transport's ping, for AJP) every
// interval; `rise` successes in a row mark a member up, `fall` failures down. Results land on the
// member's runtime object, which the balancer reads without waiting on anything.
import http from 'node:http';
import https from 'node:https';
import {
  RESPONSE_HEAD_DEFAULT,
  type DayshiftConfig,
  type HealthCheckConfig,
  type MemberConfig,
} from '../config/schema.js';
import { connectMember } from '../proxy/member-socket.js';
import { localHeader } from '../proxy/proxy-protocol.js';
import { createTransport } from '../proxy/transport-factory.js';
import type { MemberRuntime } from './member.js';

export function statusExpected(status: number, expect: HealthCheckConfig['expect']): boolean {
  for (const e of expect) {
    if (typeof e === 'number' ? e === status : Number(e[0]) === Math.floor(status / 100)) return true;
  }
  return false;
}

/** A member's health check: the global one, overridden by its cluster's, overridden by its own. */
export function healthCheckFor(config: DayshiftConfig, cluster: string, index: number): HealthCheckConfig {
  const c = config.clusters[cluster]!;
  return { ...config.health, ...c.health, ...c.members[index]!.health } as HealthCheckConfig;
}

/** What a probe needs of a member: where it is, and the transport's ping for non-HTTP members (AJP). */
export interface ProbeTarget {
  url: URL;
  tlsVerify: boolean;
  /** The member takes a PROXY protocol header: checks open with a LOCAL one (HAProxy check-send-proxy). */
  proxyProtocol?: 'v1' | 'v2';
  ping?: (timeoutMs: number) => Promise<void>;
}

/**
 * One probe of a member the proxy is not running (the release's health gate with an external load
 * balancer, which stops checking members it took out of traffic).
 */
export async function probeMember(member: MemberConfig, check: HealthCheckConfig): Promise<string | undefined> {
  const url = new URL(member.url);
  if (url.protocol === 'http:' || url.protocol === 'https:')
    return probe({ url, tlsVerify: member.tls_verify, proxyProtocol: member.proxy_protocol }, check);
  const transport = createTransport(member, {
    connectTimeoutMs: check.timeout,
    firstByteTimeoutMs: check.timeout,
    idleTimeoutMs: check.timeout,
    responseHeadBytes: RESPONSE_HEAD_DEFAULT,
    poolIdle: 1,
    poolMax: 1,
    queueMax: 1,
    queueTimeoutMs: check.timeout,
  });
  try {
    return await probe(
      { url, tlsVerify: member.tls_verify, ...(transport.ping ? { ping: (ms: number) => transport.ping!(ms) } : {}) },
      check,
    );
  } finally {
    await transport.close();
  }
}

/** One probe; resolves with the reason it failed, or undefined when healthy. */
export function probe(member: ProbeTarget, check: HealthCheckConfig): Promise<string | undefined> {
  if (member.url.protocol !== 'http:' && member.url.protocol !== 'https:') {
    const ping = member.ping;
    if (!ping) return Promise.resolve(undefined);
    return ping(check.timeout).then(
      () => undefined,
      (error: Error) => `ping failed: ${error.message}`,
    );
  }
  return new Promise((resolve) => {
    const client = member.url.protocol === 'https:' ? https : http;
    const request = client.request(
      {
        host: member.url.hostname,
        port: member.url.port || (member.url.protocol === 'https:' ? 443 : 80),
        method: check.method,
        path: check.path,
        agent: false,
        headers: { host: check.host ?? member.url.host, 'user-agent': 'dayshift-health-check' },
        rejectUnauthorized: member.tlsVerify,
        timeout: check.timeout,
        // No agent, so that Node calls createConnection (with agent: false it would make an agent of its own).
        ...(member.proxyProtocol
          ? {
              agent: undefined,
              createConnection: () =>
                connectMember({
                  url: member.url,
                  rejectUnauthorized: member.tlsVerify,
                  header: localHeader(member.proxyProtocol!),
                }),
            }
          : {}),
      },
      (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve(statusExpected(status, check.expect) ? undefined : `${check.method} ${check.path} answered ${status}`);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${check.timeout}ms`)));
    request.on('error', (error) => resolve(`${check.method} ${check.path}: ${error.message}`));
    request.end();
  });
}

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private successes = 0;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly member: MemberRuntime,
    readonly check: HealthCheckConfig,
    private readonly onChange: (member: MemberRuntime, up: boolean, reason: string | undefined) => void,
  ) {}

  start(): void {
    if (!this.check.enabled) return;
    this.run();
  }

  private run(): void {
    const m = this.member;
    void probe(
      {
        url: m.url,
        tlsVerify: m.config.tls_verify,
        proxyProtocol: m.config.proxy_protocol,
        ...(m.transport.ping ? { ping: (ms: number) => m.transport.ping!(ms) } : {}),
      },
      this.check,
    ).then((reason) => {
      if (this.stopped) return;
      this.record(reason);
      this.timer = setTimeout(() => this.run(), this.check.interval);
      this.timer.unref();
    });
  }

  private record(reason: string | undefined): void {
    const m = this.member;
    if (reason === undefined) {
      this.failures = 0;
      this.successes++;
      // The first check decides at once; afterwards `rise` successes in a row bring a down member back.
      if (m.health === 'unknown' || (m.health === 'down' && this.successes >= this.check.rise)) {
        m.health = 'up';
        m.healthReason = undefined;
        this.onChange(m, true, undefined);
      }
    } else {
      this.successes = 0;
      this.failures++;
      m.healthReason = reason;
      if (m.health === 'unknown' || (m.health === 'up' && this.failures >= this.check.fall)) {
        m.health = 'down';
        this.onChange(m, false, reason);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
