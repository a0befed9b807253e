// Traffic commands: live, drain, out, disable, enable, standby, weight, wait.
import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import { drainFigures } from '../control/drain-text.js';
import type { DrainProgress } from '../control/plane.js';
import type { DesiredState } from '../model.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { CliError, colour, EXIT, emit, Progress } from './output.js';
import { renderDrain } from './status.js';

interface ChangeOptions extends ApiOptions {
  force?: boolean;
  weight?: string;
  wait?: boolean;
  deadline?: string;
}

/** CLUSTER or CLUSTER/MEMBER → the API paths for it. */
function paths(target: string): { cluster: string; member?: string } {
  const [cluster, member, extra] = target.split('/');
  if (!cluster || extra !== undefined || member === '')
    throw new CliError(`"${target}" is not a target: expected CLUSTER or CLUSTER/MEMBER`, EXIT.usage);
  return member ? { cluster, member } : { cluster };
}

const enc = encodeURIComponent;

async function change(
  target: string,
  opts: ChangeOptions,
  cluster: 'live' | 'draining' | 'out',
  member: 'ready' | 'draining' | 'disabled' | 'standby',
): Promise<void> {
  // Every usage check before the first request: exit 2 promises that nothing was changed.
  const t = paths(target);
  const weight = opts.weight === undefined ? undefined : parseWeight(opts.weight);
  if (t.member && weight !== undefined)
    throw new CliError(
      `--weight applies to clusters: for a member use \`dayshift weight ${target} ${weight}\``,
      EXIT.usage,
    );
  if (!t.member && member === 'standby')
    throw new CliError('standby applies to members: use CLUSTER/MEMBER', EXIT.usage);
  checkDeadline(opts.deadline);
  const client = await AdminClient.connect(opts);
  // The drain owns its deadline (drain.deadline unless given): the server closes the tunnels left at it,
  // and audits that, whether or not this command is still waiting.
  const deadline = opts.deadline !== undefined ? { deadline: opts.deadline } : {};
  let state: DesiredState;
  if (t.member) {
    state = await client.request('POST', `/api/members/${enc(t.cluster)}/${enc(t.member)}/state`, {
      state: member,
      ...(opts.force ? { force: true } : {}),
      ...deadline,
    });
  } else {
    state = await client.request('POST', `/api/clusters/${enc(t.cluster)}/traffic`, {
      state: cluster,
      ...(weight !== undefined ? { weight } : {}),
      ...(opts.force ? { force: true } : {}),
      ...deadline,
    });
  }
  const word = t.member ? member : cluster;
  if (!opts.wait) {
    emit(Boolean(opts.json), { target, state: word, desired: state }, () => `${colour.bold(target)} is now ${word}`);
    return;
  }
  if (!opts.json) process.stderr.write(`${colour.bold(target)} is now ${word}; waiting until drained…\n`);
  // The progress reports the deadline just set (or the drain's earlier one, or drain.deadline).
  await waitDrained(client, target, Boolean(opts.json));
}

/** Watches a drain until it is drained or past its deadline; `readerDeadline` ends the wait earlier or later, closing nothing. */
async function waitDrained(client: AdminClient, target: string, json: boolean, readerDeadline?: string): Promise<void> {
  const progress = new Progress();
  let last: DrainProgress | undefined;
  const query = readerDeadline ? `?deadline=${enc(readerDeadline)}` : '';
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  try {
    await client.events(
      `/api/drain/${enc(target.replace('/', '~'))}${query}`,
      (event, data) => {
        last = data as DrainProgress;
        // The final state is printed once below, after the progress line is cleared.
        // Off a terminal a line is printed when the figures change (not the countdowns), or every 10 s.
        if (!json && event === 'progress' && !last.drained)
          progress.update(renderDrain(last), `${last.inFlight} ${last.sessions} ${last.tunnels} ${last.reason}`);
      },
      { signal: stop.signal },
    );
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    process.off('SIGINT', interrupt);
  }
  progress.done();
  if (!last) throw new CliError('the admin API closed the drain stream without progress', EXIT.failed);
  emit(json, last, renderDrain);
  if (stop.signal.aborted)
    throw new CliError('interrupted: the drain goes on; `dayshift wait` picks it up', EXIT.failed);
  if (last.reason === 'not-draining')
    throw new CliError(`${target} is not draining: run \`dayshift drain ${target}\` first`, EXIT.usage);
  if (last.reason === 'deadline') {
    throw new CliError(`deadline reached with ${drainFigures(last)}`, EXIT.timeout);
  }
}

function checkDeadline(text: string | undefined): void {
  if (text !== undefined && parseDuration(text) === undefined)
    throw new CliError(`bad --deadline "${text}": expected a duration such as 10m`, EXIT.usage);
}

function parseWeight(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 1000)
    throw new CliError(`weight must be an integer from 0 to 1000, got "${text}"`, EXIT.usage);
  return n;
}

// Deadlines are the drain's, counted from its start, not client timeouts: the drain closes the tunnels
// left at its deadline; a wait merely watches.
const DRAIN_HELP =
  '\nEvery drain has a deadline, counted from when it started, not from this command: --deadline, else\n' +
  'the one it already has, else drain.deadline. When it passes, Dayshift closes the open tunnels\n' +
  '(WebSocket/upgrade) to the target and records that in the audit log, whether or not anyone waits.\n' +
  'With --wait, it exits 0 when drained, and 4 when the deadline passes first.';
const WAIT_HELP =
  '\nIt exits 0 when drained, and 4 when the deadline passes first. The deadline (--deadline, else the\n' +
  "drain's own) counts from when the drain started. It only watches: it closes nothing (the drain\n" +
  'closes the tunnels left at its own deadline).';

export function register(program: Command): void {
  apiCommand(
    program.command('live <target>').description('send new sessions to a cluster again (or make a member ready)'),
  )
    .option('--weight <n>', "the cluster's weight among live clusters")
    .option('--force', 'skip the safety checks')
    .action((target: string, opts: ChangeOptions) => change(target, opts, 'live', 'ready'));

  apiCommand(
    program
      .command('drain <target>')
      .description('stop new sessions to a cluster or member; bound sessions finish there')
      .addHelpText('after', DRAIN_HELP),
  )
    .option('--wait', 'wait until drained, showing progress')
    .option(
      '--deadline <duration>',
      "the drain's deadline, counted from when it started (default: drain.deadline); the tunnels left then are closed",
    )
    .option('--force', 'allow leaving a site with no live cluster')
    .action((target: string, opts: ChangeOptions) => change(target, opts, 'draining', 'draining'));

  apiCommand(
    program
      .command('out <target>')
      .description('take a cluster out of public traffic entirely (QA sites still reach it)'),
  )
    .option('--force', 'allow leaving a site with no live cluster')
    .action((target: string, opts: ChangeOptions) => change(target, opts, 'out', 'disabled'));

  apiCommand(program.command('disable <member>').description('send nothing to a member (Apache D, HAProxy maint)'))
    .option('--force', 'allow leaving a site with no servable member')
    .action((target: string, opts: ChangeOptions) => change(requireMember(target), opts, 'out', 'disabled'));

  apiCommand(program.command('enable <member>').description('make a member ready again')).action(
    (target: string, opts: ChangeOptions) => change(requireMember(target), opts, 'live', 'ready'),
  );

  apiCommand(
    program.command('standby <member>').description('use a member only when no ready member can serve (Apache H)'),
  ).action((target: string, opts: ChangeOptions) => change(requireMember(target), opts, 'live', 'standby'));

  apiCommand(
    program
      .command('weight <target> <weight>')
      .description("set a cluster's weight among live clusters, or a member's weight"),
  )
    .option('--force', 'allow leaving a site with no servable member')
    .action(async (target: string, weightText: string, opts: ApiOptions & { force?: boolean }) => {
      const client = await AdminClient.connect(opts);
      const t = paths(target);
      const weight = parseWeight(weightText);
      const path = t.member
        ? `/api/members/${enc(t.cluster)}/${enc(t.member)}/weight`
        : `/api/clusters/${enc(t.cluster)}/weight`;
      const state = await client.request('POST', path, { weight, ...(opts.force ? { force: true } : {}) });
      emit(
        Boolean(opts.json),
        { target, weight, desired: state },
        () => `${colour.bold(target)} weight is now ${weight}`,
      );
    });

  apiCommand(
    program
      .command('wait <target>')
      .description('wait until a draining cluster or member is drained (exit 4 at the deadline)')
      .addHelpText('after', WAIT_HELP),
  )
    .option(
      '--deadline <duration>',
      "wait until this long after the drain started at most, instead of the drain's deadline (closes nothing)",
    )
    .action(async (target: string, opts: ChangeOptions) => {
      checkDeadline(opts.deadline);
      await waitDrained(await AdminClient.connect(opts), target, Boolean(opts.json), opts.deadline);
    });
}

function requireMember(target: string): string {
  if (!paths(target).member)
    throw new CliError(
      `"${target}" is a cluster: this command takes CLUSTER/MEMBER (use drain/out/live for clusters)`,
      EXIT.usage,
    );
  return target;
}
