// The gates between deploying a cluster and giving it traffic: the health gate (every member up by the
// proxy's active checks, or by Dayshift's own probes with an external load balancer) and the QA checks
// (HTTP requests through the cluster's QA site, and commands).
import { request } from 'undici';
import { healthCheckFor, probeMember } from '../balance/health.js';
import type { AnalysisConfig, QaCheckConfig } from '../config/release-schema.js';
import type { DayshiftConfig } from '../config/schema.js';
import type { ControlPlane } from '../control/plane.js';
import { listenerOrigin, qaListenerIndex, qaUrlFor } from '../observe/status-report.js';
import { type Health, memberId } from '../model.js';
import type { Rates } from '../observe/sampler.js';
import { ReleaseStepError } from './errors.js';
import { commandFailure, runCommand } from './hooks.js';
import { delay } from '../delay.js';
import { messageOf } from '../errors.js';

/**
 * Waits until every member of the cluster (but disabled ones) is up by active checks, and stays up for `stableMs` (so a
 * health state from before a restart does not pass the gate), within `timeoutMs`.
 */
export async function healthGate(
  plane: ControlPlane,
  cluster: string,
  options: { timeoutMs: number; stableMs: number; signal?: AbortSignal; pollMs?: number },
): Promise<string> {
  const deadline = Date.now() + options.timeoutMs;
  let upSince: number | undefined;
  for (;;) {
    const members = await memberHealth(plane, cluster);
    const notUp = members.filter((m) => m.health !== 'up');
    const now = Date.now();
    if (notUp.length === 0 && members.length > 0) {
      upSince ??= now;
      if (now - upSince >= options.stableMs) return `all ${members.length} member(s) up`;
    } else {
      upSince = undefined;
    }
    if (now >= deadline) {
      const which = notUp.map((m) => `${m.id} (${m.url}) is ${m.health}${m.reason ? `: ${m.reason}` : ''}`).join(', ');
      throw new ReleaseStepError(
        `health gate timed out after ${Math.round(options.timeoutMs / 1000)}s: ${which || 'members did not stay up'}`,
      );
    }
    await delay(options.pollMs ?? 250, options.signal);
  }
}

/**
 * The health of a cluster's members, but those an operator disabled (not part of the release: they would
 * never come up). The built-in proxy checks members whatever their traffic state; Apache and HAProxy stop
 * checking members they took out of traffic, so with them the gate probes each member itself, as it does
 * when the proxy's active checks are off (health.enabled: false counts every member up unchecked).
 */
async function memberHealth(
  plane: ControlPlane,
  cluster: string,
): Promise<{ id: string; url: string; health: Health; reason?: string }[]> {
  const desired = plane.state.members;
  const enabled = (id: string) => desired[`${cluster}/${id}`]?.admin !== 'disabled';
  const config = plane.config;
  const members = config.clusters[cluster]?.members ?? [];
  if (plane.driver.name === 'builtin' && members.every((_, i) => healthCheckFor(config, cluster, i).enabled)) {
    const status = await plane.status();
    return (status.clusters.find((c) => c.name === cluster)?.members ?? []).filter((m) => enabled(m.id));
  }
  const probed = await Promise.all(
    members.map(async (member, i) => {
      const id = memberId(member.route, i);
      if (!enabled(id)) return undefined;
      const reason = await probeMember(member, healthCheckFor(config, cluster, i));
      return {
        id,
        url: member.url,
        health: reason === undefined ? ('up' as const) : ('down' as const),
        ...(reason ? { reason } : {}),
      };
    }),
  );
  return probed.filter((m) => m !== undefined);
}

/** How to reach a cluster's QA site: the URL people use, and where to connect with which Host. */
export interface QaTarget {
  url: string;
  origin: string;
  host: string;
  /** `via: preview`: the preview cookie pinning the requests to the cluster on the public site. */
  cookie?: string;
}

/**
 * Where a cluster's QA checks go: its qa_url (connecting to qa_connect when set, with qa_url's Host),
 * else its QA site on Dayshift's own http listener (`httpOrigin`: where it answers). With Apache or
 * HAProxy, Dayshift's listener serves nothing, so a cluster without qa_url has no QA target there.
 */
export function qaTargetFor(config: DayshiftConfig, cluster: string, httpOrigin?: string): QaTarget {
  const url = qaUrlFor(config, cluster);
  const own = config.clusters[cluster];
  if (!url)
    throw new ReleaseStepError(
      `cluster ${cluster} has no QA site: add a site whose routes are pinned to it, or set clusters.${cluster}.qa_url`,
    );
  const parsed = new URL(url);
  if (own?.qa_url) {
    const connect = own.qa_connect;
    const origin = connect
      ? `${parsed.protocol}//${connect.host.includes(':') ? `[${connect.host}]` : connect.host}:${connect.port}`
      : parsed.origin;
    return { url, origin, host: parsed.host };
  }
  const driver = config.driver?.type ?? 'builtin';
  if (driver !== 'builtin') {
    throw new ReleaseStepError(
      `QA checks on ${cluster} cannot reach it: with the ${driver} driver Dayshift's own port serves nothing; ` +
        `set clusters.${cluster}.qa_url to its QA site on the load balancer (and qa_connect to connect to another address)`,
    );
  }
  const origin = httpOrigin ?? listenerOrigin([config.listen.http ?? []].flat()[qaListenerIndex(config)]);
  if (!origin)
    throw new ReleaseStepError(
      `no http listener to send QA checks to (listeners with proxy_protocol take only the balancer): set clusters.${cluster}.qa_url and qa_connect to reach it through the balancer`,
    );
  return { url, origin, host: parsed.host };
}

export interface QaContext {
  /** The cluster's QA site, for checks `via: qa` (absent when none is). */
  target?: QaTarget;
  /** The public site with a preview cookie, for checks `via: preview` (absent when none is). */
  preview?: QaTarget;
  cwd: string;
  env: Record<string, string>;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/** Runs the checks in order; the first failure stops them. Returns the lines for the step's output. */
export async function runQaChecks(checks: QaCheckConfig[], ctx: QaContext): Promise<string[]> {
  const lines: string[] = [];
  const note = (line: string) => {
    lines.push(line);
    ctx.onLine?.(line);
  };
  for (const check of checks) {
    const target = check.via === 'preview' ? ctx.preview : ctx.target;
    if (!target)
      throw new ReleaseStepError(`no ${check.via === 'preview' ? 'preview' : 'QA site'} to run the check through`, {
        output: lines,
      });
    if ('path' in check) {
      const path = expandEnv(check.path, ctx.env);
      const expected = check.body === undefined ? undefined : expandEnv(check.body, ctx.env);
      const url = new URL(path, target.url).toString();
      let status: number;
      let body: string;
      try {
        const response = await request(new URL(path, target.origin), {
          method: 'GET',
          headers: {
            host: target.host,
            'user-agent': 'dayshift-qa',
            ...(target.cookie ? { cookie: target.cookie } : {}),
          },
          headersTimeout: check.timeout,
          bodyTimeout: check.timeout,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        });
        status = response.statusCode;
        body = await response.body.text();
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        note(`GET ${url}: ${messageOf(err)}`);
        throw new ReleaseStepError(`QA check GET ${url} failed: ${messageOf(err)}`, { output: lines });
      }
      const statusOk = check.status === undefined ? status >= 200 && status < 300 : status === check.status;
      const bodyOk = expected === undefined || body.includes(expected);
      note(
        `GET ${url} → ${status}${expected !== undefined ? (bodyOk ? `, body has "${expected}"` : `, body lacks "${expected}"`) : ''}`,
      );
      if (!statusOk)
        throw new ReleaseStepError(`QA check GET ${url} answered ${status}, expected ${check.status ?? '2xx'}`, {
          output: lines,
        });
      if (!bodyOk)
        throw new ReleaseStepError(`QA check GET ${url}: the body does not contain "${expected}"`, { output: lines });
    } else {
      note(`$ ${check.run}`);
      const result = await runCommand(check.run, {
        cwd: ctx.cwd,
        env: {
          ...ctx.env,
          DAYSHIFT_QA_URL: target.url,
          DAYSHIFT_QA_ORIGIN: target.origin,
          DAYSHIFT_QA_HOST: target.host,
          ...(target.cookie ? { DAYSHIFT_QA_COOKIE: target.cookie } : {}),
        },
        timeoutMs: check.timeout,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        onLine: note,
      });
      const failure = commandFailure(`QA command "${check.run}"`, result, check.timeout);
      if (failure) throw new ReleaseStepError(failure, { output: lines });
    }
  }
  return lines;
}

/**
 * `$NAME` and `${NAME}` of the release's variables (DAYSHIFT_VERSION, DAYSHIFT_CLUSTER, ...) in a check's
 * path or body, as a shell would expand them in a command check; other text is left as written.
 */
export function expandEnv(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))/g,
    (whole, braced: string | undefined, bare: string | undefined) => env[(braced ?? bare)!] ?? whole,
  );
}

/** Judges a canary: the released cluster's rates against the other live clusters'. Undefined = fine. */
export function analyse(
  released: Rates,
  baseline: Rates,
  windowSeconds: number,
  a: AnalysisConfig,
): string | undefined {
  const requests = released.requestsPerSecond * windowSeconds;
  if (requests >= a.min_requests && released.errorRate > a.max_error_rate) {
    return `error rate ${(released.errorRate * 100).toFixed(1)}% over ${windowSeconds}s is above ${(a.max_error_rate * 100).toFixed(1)}%`;
  }
  if (
    released.p99Ms !== undefined &&
    released.p99Ms > a.min_p99 &&
    baseline.p99Ms !== undefined &&
    requests >= a.min_requests
  ) {
    const ratio = released.p99Ms / Math.max(baseline.p99Ms, 1);
    if (ratio > a.max_p99_ratio) {
      return `p99 ${Math.round(released.p99Ms)}ms is ${ratio.toFixed(1)}× the other clusters' ${Math.round(baseline.p99Ms)}ms (limit ${a.max_p99_ratio}×)`;
    }
  }
  return undefined;
}
