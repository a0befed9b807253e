// `dayshift release …`: start, watch, approve, abort, resume and retry releases, and list past ones.
// The conductor runs inside the Dayshift server; these commands talk to it over the admin API.
import type { Command } from 'commander';
import { drainFigures } from '../control/drain-text.js';
import { pct as share } from '../control/shadow.js';
import type { Release, ReleaseStep } from '../release/types.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { CliError, colour, duration, emit, EXIT, stateColour, table, warningLines } from './output.js';

interface StartOptions extends ApiOptions {
  version?: string;
  plan?: boolean;
  waitWindow?: boolean;
  watch?: boolean;
}

export function register(program: Command): void {
  const release = program
    .command('release')
    .description('run the release plan: drain, deploy, check, approve and shift traffic, cluster by cluster')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 the release failed or was aborted (or, when watched, was interrupted), 2 bad usage (or no release to watch), 3 refused (another release, outside the window, nothing to approve), 5 admin API unreachable.',
    );

  apiCommand(
    release.command('start').description('start a release of a version (with --plan: print the steps, change nothing)'),
  )
    .requiredOption('--version <v>', 'the version to release (given to hooks as DAYSHIFT_VERSION)')
    .option('--plan', 'print the steps the release would run, change nothing')
    .option('--wait-window', 'outside the release windows, wait for the next one instead of refusing')
    .option('-w, --watch', 'follow the release until it ends')
    .action(async (opts: StartOptions) => {
      const client = await AdminClient.connect(opts);
      if (opts.plan) {
        const plan = await client.request<{ version: string; steps: ReleaseStep[]; warnings?: string[] }>(
          'POST',
          '/api/release/start',
          { version: opts.version, plan: true },
        );
        emit(
          Boolean(opts.json),
          plan,
          (p) =>
            `${colour.bold(`release plan for version ${p.version}`)}\n${table(
              ['#', 'STEP', 'REPEATABLE'],
              p.steps.map((s, i) => [i + 1, s.title, s.repeatable ? 'yes' : colour.yellow('asks first')]),
            )}${warningLines(p.warnings)}`,
        );
        return;
      }
      const started = await client.request<Release & { warnings?: string[] }>('POST', '/api/release/start', {
        version: opts.version,
        waitWindow: Boolean(opts.waitWindow),
      });
      if (!opts.json && started.warnings?.length)
        process.stderr.write(`${warningLines(started.warnings).trimStart()}\n`);
      if (opts.watch) return watch(client, opts);
      emit(
        Boolean(opts.json),
        started,
        (r) =>
          `release ${colour.bold(r.id)} of version ${r.version} started (${r.steps.length} steps)\nfollow it with: dayshift release status --watch`,
      );
    });

  apiCommand(
    release.command('status').description('the current (or last) release: steps with durations, drain progress'),
  )
    .option(
      '-w, --watch',
      'follow live until the release succeeds (exit 0), fails, is aborted or is interrupted (exit 1)',
    )
    .action(async (opts: ApiOptions & { watch?: boolean }) => {
      const client = await AdminClient.connect(opts);
      // The event stream stays open without a release (it waits for one), so ask first.
      const r = await client.request<Release>('GET', '/api/release').catch((err: unknown) => {
        if (opts.watch && err instanceof CliError && err.exitCode === EXIT.usage)
          throw new CliError(
            'there is no release to watch: start one with `dayshift release start --version V`',
            EXIT.usage,
          );
        throw err;
      });
      if (opts.watch) return watch(client, opts);
      emit(Boolean(opts.json), r, renderRelease);
    });

  const simple = (name: string, description: string, path: string, done: (r: Release) => string) =>
    apiCommand(release.command(name).description(description)).action(async (opts: ApiOptions) => {
      const client = await AdminClient.connect(opts);
      const r = await client.request<Release>('POST', path, {});
      emit(Boolean(opts.json), r, done);
    });

  simple(
    'approve',
    'approve the step that waits for approval',
    '/api/release/approve',
    (r) => `approved: release ${r.id} goes on (${stepAt(r)})`,
  );
  simple('retry', 're-run the failed step', '/api/release/retry', (r) => `retrying "${stepAt(r)}" of release ${r.id}`);

  apiCommand(
    release
      .command('abort')
      .description(
        'stop the release: rollback hook, then traffic back to the clusters live before it, with their weights',
      ),
  ).action(async (opts: ApiOptions) => {
    const client = await AdminClient.connect(opts);
    const r = await client.request<Release>('POST', '/api/release/abort', {});
    emit(Boolean(opts.json), r, (x) => `release ${x.id} ${stateColour(x.state)}: ${x.reason ?? ''}`);
  });

  apiCommand(release.command('resume').description('continue an interrupted release at the step it stopped in'))
    .option('--yes', 'repeat the interrupted step even if it is not safe to repeat (check what it did first)')
    .action(async (opts: ApiOptions & { yes?: boolean }) => {
      const client = await AdminClient.connect(opts);
      const r = await client.request<Release>('POST', '/api/release/resume', { yes: Boolean(opts.yes) });
      emit(Boolean(opts.json), r, (x) => `resuming release ${x.id} at "${stepAt(x)}"`);
    });

  apiCommand(
    release.command('history').description('past releases: version, who, start, end, outcome, per-step durations'),
  )
    .option('--steps', 'show every step of every release')
    .action(async (opts: ApiOptions & { steps?: boolean }) => {
      const client = await AdminClient.connect(opts);
      const all = await client.request<Release[]>('GET', '/api/releases');
      emit(Boolean(opts.json), all, (list) => renderHistory(list, Boolean(opts.steps)));
    });
}

function stepAt(r: Release): string {
  return r.steps[r.current]?.title ?? 'the end';
}

/**
 * Follows /api/release/events, redrawing; ends when the release succeeds, fails, is aborted or is
 * interrupted. Waiting for approval does not end it: the approval may come from elsewhere.
 */
async function watch(client: AdminClient, opts: ApiOptions): Promise<void> {
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  let last: Release | undefined;
  try {
    await client.events(
      '/api/release/events',
      (event, data) => {
        if (event !== 'release') return;
        last = data as Release;
        if (opts.json) process.stdout.write(`${JSON.stringify(last)}\n`);
        else process.stdout.write(`${process.stdout.isTTY ? '\x1b[2J\x1b[H' : '\n'}${renderRelease(last)}\n`);
        if (['succeeded', 'aborted', 'failed', 'interrupted'].includes(last.state)) stop.abort();
      },
      { signal: stop.signal },
    );
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    process.off('SIGINT', interrupt);
  }
  if (!last)
    throw new CliError('there is no release to watch: start one with `dayshift release start --version V`', EXIT.usage);
  // Interrupted is not done: it waits for `resume` or `abort`, so a script must not read it as success.
  if (last.state === 'failed' || last.state === 'aborted' || last.state === 'interrupted') {
    throw new CliError(`release ${last.id} ${last.state}${last.reason ? `: ${last.reason}` : ''}`, EXIT.failed);
  }
}

function stepDuration(s: ReleaseStep, now = Date.now()): number | undefined {
  if (!s.startedAt) return undefined;
  return (s.endedAt ? Date.parse(s.endedAt) : now) - Date.parse(s.startedAt);
}

function renderRelease(r: Release): string {
  const lines: string[] = [];
  const end = r.endedAt ? Date.parse(r.endedAt) : Date.now();
  lines.push(
    `${colour.bold(`release ${r.id}`)}  version ${colour.bold(r.version)}  ${stateColour(r.state)}  by ${r.startedBy}  ${duration(end - Date.parse(r.startedAt))}`,
  );
  if (r.reason) lines.push(`  ${r.state === 'failed' || r.state === 'aborted' ? colour.red(r.reason) : r.reason}`);
  lines.push('');
  lines.push(
    table(
      ['', 'STEP', 'STATE', 'TIME', 'DETAIL'],
      r.steps.map((s, i) => [
        i === r.current && !['succeeded', 'aborted'].includes(r.state) ? '▸' : ' ',
        s.title,
        stateColour(s.state),
        duration(stepDuration(s)),
        detailOf(s),
      ]),
    ),
  );
  const step = r.steps[r.current];
  if (r.drain && !r.drain.drained) {
    const d = r.drain;
    lines.push('');
    lines.push(
      `  draining ${d.target}: ${drainFigures(d)}` +
        (d.remainingMs !== undefined ? `, deadline in ${duration(d.remainingMs)}` : ''),
    );
  }
  if (r.canary) {
    const c = r.canary;
    const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
    lines.push('');
    lines.push(
      `  canary ${c.cluster} at ${c.percent}%: ${c.released.requestsPerSecond.toFixed(1)} req/s, errors ${pct(c.released.errorRate)}, p99 ${duration(c.released.p99Ms)}` +
        ` · others ${c.baseline.requestsPerSecond.toFixed(1)} req/s, errors ${pct(c.baseline.errorRate)}, p99 ${duration(c.baseline.p99Ms)}${c.breach ? colour.red(` · breach: ${c.breach}`) : ''}`,
    );
  }
  if (r.shadow && step?.kind === 'shadow') {
    const sh = r.shadow;
    const side = (f: typeof sh.live) => `${f.requests} answers, 5xx ${share(f.rate5xx)}, p99 ${duration(f.p99Ms)}`;
    lines.push('');
    lines.push(
      `  shadow ${sh.percent}% → ${sh.cluster}: live ${side(sh.live)} · shadow ${side(sh.shadow)}${sh.copies.dropped ? ` · ${sh.copies.dropped} dropped` : ''}`,
    );
    for (const route of sh.routes.filter((x) => x.differences.length > 0))
      lines.push(`    ${route.site} ${route.route}: ${route.differences.join(', ')}`);
  }
  const approvesAt = step?.kind === 'approval' ? step.approvesAt : undefined;
  if (r.state === 'awaiting-approval')
    lines.push(
      '',
      `  waiting for approval${approvesAt ? ` (automatic at ${approvesAt})` : ''}: dayshift release approve`,
    );
  if (r.state === 'failed')
    lines.push('', '  fix the cause, then: dayshift release retry   (or: dayshift release abort)');
  if (r.state === 'interrupted')
    lines.push(
      '',
      `  dayshift release resume${step && !step.repeatable && step.state === 'running' ? ' --yes   (the interrupted step is not safe to repeat: check it first)' : ''}   (or: dayshift release abort)`,
    );
  const output = step?.output?.slice(-5) ?? [];
  if (output.length > 0 && (step?.state === 'running' || step?.state === 'failed')) {
    lines.push('', colour.dim(`  output of "${step!.title}":`), ...output.map((l) => colour.dim(`    ${l}`)));
  }
  return lines.join('\n');
}

function detailOf(s: ReleaseStep): string {
  const text =
    s.detail ??
    (s.kind === 'approval' && s.approvesAt && s.state === 'waiting' ? `approves itself at ${s.approvesAt}` : '');
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

function renderHistory(list: Release[], steps: boolean): string {
  if (list.length === 0) return 'no releases yet';
  const rows = list.map((r) => [
    r.id,
    r.version,
    stateColour(r.state),
    r.startedBy,
    r.startedAt.replace('T', ' ').slice(0, 19),
    r.endedAt ? r.endedAt.replace('T', ' ').slice(0, 19) : '-',
    duration(r.endedAt ? Date.parse(r.endedAt) - Date.parse(r.startedAt) : undefined),
  ]);
  const lines = [table(['ID', 'VERSION', 'OUTCOME', 'BY', 'STARTED', 'ENDED', 'TOOK'], rows)];
  if (steps) {
    for (const r of list) {
      lines.push('', colour.bold(`${r.id} (${r.version})`));
      lines.push(
        table(
          ['STEP', 'STATE', 'TIME'],
          r.steps.map((s) => [s.title, stateColour(s.state), duration(stepDuration(s))]),
        ),
      );
    }
  }
  return lines.join('\n');
}
