// `dayshift demo`: everything in one process, nothing to configure. Two clusters of demo app servers,
// the proxy in front, synthetic users in the middle of checkouts, and a full release to a new version
// with progress on screen; then the figures that matter: requests served, failed, sessions cut.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfigFile } from '../config/load.js';
import { formatDuration } from '../config/units.js';
import { startDayshift, type Dayshift } from '../dayshift.js';
import { isFinished } from '../release/conductor.js';
import type { Release } from '../release/types.js';
import { DEMO_TOKEN_ENV, demoConfig, shellQuote, startDemoApps, type DemoApps } from './environment.js';
import { LoadGenerator, type LoadResult } from './load.js';
import { delay } from '../delay.js';
import { freePort } from '../ports.js';

export interface DemoOptions {
  fromVersion: string;
  version: string;
  users: number;
  thinkMs: number;
  warmupMs: number;
  drainIdle: string;
  keep: boolean;
  /** Shift by canary steps with analysis instead of a swap (QA then checks /health only). */
  canary?: boolean;
  /** The public (proxy) port on loopback; a free one when absent. */
  port?: number;
}

const CANARY_PLAN = {
  qa: [{ path: '/health', status: 200 }],
  shift: {
    mode: 'canary',
    steps: [
      { percent: 20, pause: '5s' },
      { percent: 50, pause: '5s' },
    ],
    analysis: { window: '3s', max_error_rate: 0.02, min_requests: 5 },
  },
};

/**
 * The swap demo's shadow step: after QA, half the public requests are copied to the released cluster for
 * a few seconds and its answers compared with the live ones before approval. (The canary demo has none:
 * its broken version is for canary analysis to catch.)
 */
const SHADOW_PLAN = {
  shadow: { percent: 50, for: '3s', min_samples: 5, max_5xx_increase: '0.5%', max_p99_ratio: 1.2 },
};

export interface DemoReport {
  urls: { public: string; qa: Record<string, string>; admin: string };
  token: string;
  release: Release;
  load: LoadResult;
  steps: { title: string; state: string; ms: number | undefined }[];
  ok: boolean;
}

export interface DemoOutput {
  /** Progress and results for people. */
  line(text: string): void;
  /** Called once everything is up (URLs known). */
  ready?(report: Pick<DemoReport, 'urls' | 'token'>): void;
}

/** Runs the demo until the release ends (and, with keep, until the signal fires). Cleans up always. */
export async function runDemo(
  options: DemoOptions,
  out: DemoOutput,
  signal: AbortSignal,
): Promise<DemoReport | undefined> {
  const cleanup: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-demo-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const apps: DemoApps = await startDemoApps(options.fromVersion);
    cleanup.push(() => apps.close());
    const httpPort = options.port ?? (await freePort());
    const adminPort = await freePort();
    const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
    const config = demoConfig({
      apps: apps.apps,
      httpPort,
      adminPort,
      stateDir: join(dir, 'state'),
      dayshiftCommand: `${shellQuote(process.execPath)} ${shellQuote(main)}`,
      drainIdle: options.drainIdle,
      release: options.canary ? CANARY_PLAN : SHADOW_PLAN,
    });
    const file = join(dir, 'dayshift.yaml');
    await writeFile(file, stringify(config));
    // The deploy hook runs as a child of this process and finds the demo apps' control token here.
    process.env[DEMO_TOKEN_ENV] = apps.token;
    const dayshift: Dayshift = await startDayshift(await loadConfigFile(file), pino({ level: 'silent' }));
    cleanup.push(() => dayshift.close(1000));

    const urls = {
      public: `http://localhost:${httpPort}/`,
      qa: { 'prod-a': `http://qa-a.localhost:${httpPort}/`, 'prod-b': `http://qa-b.localhost:${httpPort}/` },
      admin: dayshift.adminUrl,
    };
    out.line(`Dayshift demo: two clusters (prod-a: a1 a2, prod-b: b1 b2) running version ${options.fromVersion}`);
    out.line(`  public site   ${urls.public}`);
    out.line(`  QA sites      ${urls.qa['prod-a']}  ${urls.qa['prod-b']}`);
    out.line(`  dashboard     ${urls.admin}/   (sign in with the token)`);
    out.line(`  admin API     ${urls.admin}   token ${dayshift.token.value}`);
    out.line(`  config        ${file}`);
    out.line(
      `  watch it:     DAYSHIFT_TOKEN=${dayshift.token.value} dayshift release status --watch --admin ${urls.admin}`,
    );
    out.ready?.({ urls, token: dayshift.token.value });

    await waitAllUp(dayshift, signal);
    const load = new LoadGenerator({
      origin: `http://127.0.0.1:${httpPort}`,
      host: `localhost:${httpPort}`,
      users: options.users,
      thinkMs: options.thinkMs,
      maxDurationMs: 10 * 60_000,
    }).start();
    let loadStopped = false;
    cleanup.push(async () => {
      if (!loadStopped) await load.stop();
    });
    out.line(`${options.users} synthetic users are walking through checkouts (cart → address → payment → done)`);
    await delay(options.warmupMs, signal);

    out.line(`releasing version ${options.version}:`);
    const finished = watchRelease(dayshift, out);
    await dayshift.conductor.start({ who: 'demo', from: 'local' }, options.version);
    const release = await Promise.race([finished, aborted(signal)]);
    // Let the users finish the checkouts they are in; count them.
    loadStopped = true;
    const result = await load.stop();
    const steps = release.steps.map((s) => ({
      title: s.title,
      state: s.state,
      ms: s.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : undefined,
    }));
    const ok = release.state === 'succeeded' && result.failed === 0 && result.cut === 0;
    out.line('');
    out.line(
      `release ${release.state} in ${formatDuration(Date.parse(release.endedAt ?? new Date().toISOString()) - Date.parse(release.startedAt))}${release.reason ? `: ${release.reason}` : ''}`,
    );
    out.line(`  requests served     ${result.requests}`);
    out.line(`  failed requests     ${result.failed}`);
    out.line(`  sessions cut        ${result.cut}`);
    out.line(
      `  checkouts completed ${result.checkoutsCompleted} (${Object.entries(result.completedByVersion)
        .map(([v, n]) => `${n} on ${v}`)
        .join(', ')})`,
    );
    for (const problem of result.problems.slice(0, 5)) out.line(`  problem: ${problem}`);
    out.line('  time per step:');
    for (const s of steps)
      out.line(`    ${(s.ms === undefined ? '-' : formatDuration(s.ms)).padStart(7)}  ${s.state.padEnd(9)} ${s.title}`);
    const report: DemoReport = { urls, token: dayshift.token.value, release, load: result, steps, ok };
    if (options.keep) {
      out.line('');
      out.line(`everything keeps running: open ${urls.public} or the QA sites; Ctrl-C stops it all`);
      if (release.state === 'failed')
        out.line(
          `the release is failed: try \`dayshift release retry\` or \`dayshift release abort\` with --admin ${urls.admin} and DAYSHIFT_TOKEN`,
        );
      await aborted(signal).catch(() => undefined);
    }
    return report;
  } catch (err) {
    if (signal.aborted) return undefined;
    throw err;
  } finally {
    await stop();
  }
}

/** Prints each step as it starts and ends; resolves with the release once it stops (done or failed). */
function watchRelease(dayshift: Dayshift, out: DemoOutput): Promise<Release> {
  const seen = new Map<string, string>();
  let lastDrain = '';
  return new Promise((resolve) => {
    const onUpdate = (r: Release) => {
      for (const step of r.steps) {
        const state = step.state;
        if (seen.get(step.id) === state) continue;
        seen.set(step.id, state);
        const took =
          step.startedAt && step.endedAt
            ? ` (${formatDuration(Date.parse(step.endedAt) - Date.parse(step.startedAt))})`
            : '';
        if (state === 'running' || state === 'waiting') out.line(`  … ${step.title}`);
        else if (state !== 'pending') {
          out.line(
            `  ${state === 'succeeded' ? '✓' : state === 'skipped' ? '-' : '✗'} ${step.title}${took}${step.detail ? `: ${step.detail}` : ''}`,
          );
          // What the copies found route by route: a copy is still a request (sessions it does not know).
          if (step.kind === 'shadow' && r.shadow?.cluster === step.cluster)
            for (const route of r.shadow.routes)
              out.line(
                `      ${route.site} ${route.route}: ${route.shadow.requests} compared, ${route.differences.length > 0 ? `status classes live → shadow: ${route.differences.join(', ')}` : 'same status classes'}`,
              );
        }
      }
      if (r.drain && !r.drain.drained) {
        const line = `      ${r.drain.target}: ${r.drain.inFlight} in flight, ${r.drain.sessions} session(s) still active`;
        if (line !== lastDrain) out.line(line);
        lastDrain = line;
      }
      if (isFinished(r) || r.state === 'failed' || r.state === 'interrupted') {
        dayshift.conductor.off('update', onUpdate);
        resolve(r);
      }
    };
    dayshift.conductor.on('update', onUpdate);
  });
}

async function waitAllUp(dayshift: Dayshift, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await dayshift.plane.status();
    if (status.clusters.every((c) => c.members.every((m) => m.health === 'up'))) return;
    if (Date.now() > deadline) throw new Error('the demo app servers did not come up within 15s');
    await delay(100, signal);
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
