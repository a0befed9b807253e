// `dayshift status`: where traffic goes, member by member.
import type { Command } from 'commander';
import { drainFigures } from '../control/drain-text.js';
import type { DrainProgress } from '../control/plane.js';
import type { StatusReport } from '../observe/status-report.js';
import type { WorkerStatus } from '../workers/pool.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { renderShadow } from './shadow.js';
import { colour, duration, emit, stateColour, table } from './output.js';

export function register(program: Command): void {
  apiCommand(program.command('status').description('show sites, clusters and members with live figures'))
    .option('-w, --watch', 'refresh every second until Ctrl-C')
    .action(async (opts: ApiOptions & { watch?: boolean }) => {
      const client = await AdminClient.connect(opts);
      if (!opts.watch) {
        emit(Boolean(opts.json), await client.request<StatusReport>('GET', '/api/status'), renderStatus);
        return;
      }
      await client.events('/api/events', (event, data) => {
        if (event !== 'status') return;
        if (opts.json) process.stdout.write(`${JSON.stringify(data)}\n`);
        else process.stdout.write(`\x1b[2J\x1b[H${renderStatus(data as StatusReport)}\n`);
      });
    });
}

export function renderStatus(s: StatusReport): string {
  const lines: string[] = [];
  lines.push(`${colour.bold('Dayshift')}  driver ${s.driver} · store ${s.store} · ${s.config}`);
  lines.push('');
  lines.push(
    table(
      ['SITE', 'HOSTS', 'ROUTES', 'NOTE'],
      s.sites.map((site) => [
        site.name,
        site.hosts.join(' '),
        site.routes
          .map(
            (r) =>
              `${r.path} → ${r.clusters.join(', ')} (${r.traffic === 'pinned' ? 'pinned' : r.balance}${r.sticky ? `, sticky ${r.sticky}` : ''})`,
          )
          .join('; '),
        [
          site.maintenance ? colour.red(`maintenance: ${site.maintenance.message}`) : '',
          site.pause ? colour.yellow(`paused until ${site.pause.until}`) : '',
        ]
          .filter(Boolean)
          .join(' ') || '',
      ]),
    ),
  );
  const certified = s.sites.filter((site) => site.certificate);
  if (certified.length > 0) {
    lines.push('');
    lines.push(
      table(
        ['CERTIFICATE', 'HOSTS', 'EXPIRES', 'RENEWS', 'ISSUER', 'NOTE'],
        certified.map(({ name, certificate: c }) => [
          name,
          c!.hosts.join(' '),
          c!.notAfter ? expiry(c!.notAfter, s.at) : colour.yellow('none yet'),
          c!.renewAt ?? '',
          c!.issuer ?? '',
          c!.lastError ? colour.red(`${c!.lastError}; next try ${c!.retryAt ?? 'soon'}`) : '',
        ]),
      ),
    );
  }
  lines.push('');
  const rows: (string | number)[][] = [];
  for (const c of s.clusters) {
    rows.push([
      colour.bold(c.name),
      stateColour(c.traffic),
      c.weight,
      '',
      rate(c.requestsPerSecond),
      percent(c.errorRate),
      ms(c.p50Ms),
      ms(c.p99Ms),
      c.members.reduce((n, m) => n + m.inFlight, 0),
      total(c.members.map((m) => m.boundSessions)),
      '',
      total(c.members.map((m) => m.openTunnels)),
      c.qaUrl ?? '',
    ]);
    for (const m of c.members) {
      rows.push([
        `  ${m.id}`,
        stateColour(m.admin),
        m.weight,
        stateColour(m.health),
        rate(m.requestsPerSecond),
        percent(m.errorRate),
        ms(m.p50Ms),
        ms(m.p99Ms),
        m.inFlight,
        m.boundSessions ?? '-',
        m.boundSessions ? duration(m.oldestIdleMs) : '-',
        m.openTunnels ?? '-',
        colour.dim(m.url),
      ]);
    }
  }
  lines.push(
    table(
      [
        'CLUSTER/MEMBER',
        'STATE',
        'WEIGHT',
        'HEALTH',
        'REQ/S',
        'ERR',
        'P50',
        'P99',
        'IN FLIGHT',
        'SESSIONS',
        'OLDEST IDLE',
        'TUNNELS',
        'URL',
      ],
      rows,
    ),
  );
  for (const c of s.clusters) if (c.drain) lines.push('', renderDrain(c.drain));
  for (const p of s.previews ?? [])
    lines.push(
      '',
      `preview ${colour.bold(p.id)} of ${p.cluster} on ${p.site} until ${p.until}, by ${p.who}${p.allow ? ` for ${p.allow.join(', ')}` : ''}`,
    );
  if (s.shadow) lines.push('', renderShadow(s.shadow));
  if (s.workers) lines.push('', renderWorkers(s.workers));
  for (const w of s.warnings) lines.push(colour.yellow(`warning: ${w}`));
  return lines.join('\n');
}

export function renderDrain(p: DrainProgress): string {
  const head = p.drained
    ? colour.green(`${p.target} drained`) + (p.reason === 'deadline' ? colour.yellow(' (deadline reached)') : '')
    : colour.yellow(`${p.target} draining`);
  return (
    `${head}: ${drainFigures(p)}` +
    (p.remainingMs !== undefined && !p.drained ? `, deadline in ${duration(p.remainingMs)}` : '')
  );
}

/** The worker processes: which serve, since when, how often each was replaced and how the last one ended. */
function renderWorkers(workers: WorkerStatus[]): string {
  return table(
    ['WORKER', 'PID', 'STATE', 'STARTED', 'RESTARTS', 'LAST EXIT'],
    workers.map((w) => [
      w.worker,
      w.pid,
      stateColour(w.state),
      w.startedAt,
      w.restarts > 0 ? colour.yellow(String(w.restarts)) : w.restarts,
      w.lastExit
        ? `${w.lastExit.signal ?? `exit code ${w.lastExit.code}`} (pid ${w.lastExit.pid}) at ${w.lastExit.at}`
        : '',
    ]),
  );
}

/** An expiry date with the days left, red within a week. */
function expiry(notAfter: string, now: string): string {
  const days = Math.floor((Date.parse(notAfter) - Date.parse(now)) / 86_400_000);
  const text = `${notAfter} (${days} d)`;
  return days < 7 ? colour.red(text) : text;
}

/** A cluster's sum of a member figure; '-' when the driver does not count it (Apache, HAProxy: sessions). */
const total = (figures: (number | undefined)[]) =>
  figures.every((n) => n === undefined) ? '-' : figures.reduce<number>((sum, n) => sum + (n ?? 0), 0);
const rate = (n: number | undefined) => (n === undefined ? '-' : n >= 100 ? n.toFixed(0) : n.toFixed(1));
const percent = (n: number | undefined) => (n === undefined ? '-' : `${(n * 100).toFixed(n > 0 && n < 0.01 ? 2 : 1)}%`);
const ms = (n: number | undefined) => (n === undefined ? '-' : n < 10 ? `${n.toFixed(1)}ms` : `${Math.round(n)}ms`);
