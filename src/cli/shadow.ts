// `dayshift shadow`: copy a share of live requests to a cluster out of traffic and compare its answers
// (start with --percent), show the comparison, or stop it (--stop).
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../config/units.js';
import { pct, type ShadowReport, type SideFigures } from '../control/shadow.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { CliError, colour, emit, EXIT, table } from './output.js';

interface ShadowOptions extends ApiOptions {
  percent?: string;
  for?: string;
  methods?: string;
  stop?: boolean;
}

export function register(program: Command): void {
  apiCommand(
    program
      .command('shadow [cluster]')
      .description(
        'copy a share of live requests to CLUSTER (out of traffic), compare its answers with the live ones, throw them away',
      )
      .addHelpText(
        'after',
        [
          '',
          'Without --percent or --stop: shows the comparison of the shadow in force (or the last one).',
          'Copies are of requests without a body, GET and HEAD by default (shadow.methods): a copy is still a',
          'request to the application, with its writes, emails and rate limits (docs/releases.md#shadow-traffic).',
          "Figures are this instance's copies; every instance copies.",
          '',
          'Examples:',
          '  dayshift shadow prod-a --percent 10 --for 5m',
          '  dayshift shadow prod-a',
          '  dayshift shadow prod-a --stop',
        ].join('\n'),
      ),
  )
    .option('--percent <n>', 'start: the share of requests copied, percent (above 0, at most 100)')
    .option('--for <duration>', 'how long the copies run (default shadow.for, 5m)')
    .option('--methods <list>', 'methods copied, comma-separated (default shadow.methods: GET,HEAD)')
    .option('--stop', 'stop the shadow on every instance (its figures stay readable)')
    .action(async (cluster: string | undefined, opts: ShadowOptions) => {
      const json = Boolean(opts.json);
      if (opts.stop && opts.percent !== undefined)
        throw new CliError('give either --percent (start) or --stop, not both', EXIT.usage);
      const starting = opts.percent !== undefined;
      if (starting && cluster === undefined) throw new CliError('name the CLUSTER to copy requests to', EXIT.usage);
      if (!starting && (opts.for !== undefined || opts.methods !== undefined))
        throw new CliError('--for and --methods go with --percent, which starts a shadow', EXIT.usage);
      const percent = Number(opts.percent);
      if (starting && !(percent > 0 && percent <= 100))
        throw new CliError(`bad --percent "${opts.percent}": expected a number above 0 and at most 100`, EXIT.usage);
      if (opts.for !== undefined && parseDuration(opts.for) === undefined)
        throw new CliError(`bad --for "${opts.for}": expected a duration such as 5m or 1h`, EXIT.usage);
      const methods = opts.methods
        ?.split(',')
        .map((m) => m.trim())
        .filter(Boolean);
      if (methods && (methods.length === 0 || methods.some((m) => !/^[A-Za-z]+$/.test(m))))
        throw new CliError(`bad --methods "${opts.methods}": expected HTTP methods such as GET,HEAD`, EXIT.usage);
      const client = await AdminClient.connect(opts);
      if (opts.stop) {
        const result = await client.request<{ stopped: boolean; report: ShadowReport | null }>(
          'DELETE',
          `/api/shadow${cluster !== undefined ? `?cluster=${encodeURIComponent(cluster)}` : ''}`,
        );
        emit(json, result, (r) =>
          r.stopped
            ? `shadow to ${colour.bold(r.report!.cluster)} stopped on every instance\n\n${renderShadow(r.report!)}`
            : `no shadow${cluster !== undefined ? ` to ${cluster}` : ''} in force: nothing to stop`,
        );
        return;
      }
      if (starting) {
        const report = await client.request<ShadowReport>('POST', '/api/shadow', {
          cluster,
          percent,
          ...(opts.for !== undefined ? { for: opts.for } : {}),
          ...(methods ? { methods: methods.map((m) => m.toUpperCase()) } : {}),
        });
        emit(json, report, (r) =>
          [
            `copying ${r.percent}% of ${r.methods.join(', ')} requests to ${colour.bold(r.cluster)} until ${r.until}`,
            colour.dim(`see the comparison: dayshift shadow ${r.cluster}    stop: dayshift shadow ${r.cluster} --stop`),
          ].join('\n'),
        );
        return;
      }
      const report = await client.request<ShadowReport>('GET', '/api/shadow');
      if (cluster !== undefined && report.cluster !== cluster)
        throw new CliError(
          `no shadow to ${cluster}: the ${report.active ? 'shadow in force' : 'last shadow'} copies to ${report.cluster}`,
          EXIT.usage,
        );
      emit(json, report, renderShadow);
    });
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${Math.round(value)}ms`;
}

function sideRow(name: string, s: SideFigures): string[] {
  const c = s.classes;
  return [
    name,
    String(s.requests),
    String(c['2xx']),
    String(c['3xx']),
    String(c['4xx']),
    String(c['5xx']),
    String(c.failed),
    pct(s.rate5xx),
    ms(s.p50Ms),
    ms(s.p90Ms),
    ms(s.p99Ms),
  ];
}

/** The comparison as `dayshift shadow` and `dayshift status` print it. */
export function renderShadow(r: ShadowReport): string {
  const left = Date.parse(r.until) - Date.now();
  const lines = [
    `${colour.bold('Shadow')} ${r.percent}% of ${r.methods.join(', ')} → ${colour.bold(r.cluster)}  ${
      r.active ? colour.yellow(`copying, ${formatDuration(left)} left`) : colour.dim(`ended ${r.until}`)
    }  by ${r.who}`,
    `copies on this instance: ${r.copies.sent} sent, ${r.copies.compared} compared, ${r.copies.dropped} dropped (queue full), ${r.copies.inFlight} in flight, ${r.copies.queued} queued`,
    table(
      ['', 'REQUESTS', '2XX', '3XX', '4XX', '5XX', 'FAILED', '5XX RATE', 'P50', 'P90', 'P99'],
      [sideRow('live', r.live), sideRow('shadow', r.shadow)],
    ),
  ];
  const differing = r.routes.filter((route) => route.differences.length > 0);
  if (r.routes.length > 0)
    lines.push(
      '',
      table(
        ['SITE', 'ROUTE', 'REQUESTS', 'LIVE P99', 'SHADOW P99', 'STATUS CLASSES (live → shadow)'],
        r.routes.map((route) => [
          route.site,
          route.route,
          String(route.shadow.requests),
          ms(route.live.p99Ms),
          ms(route.shadow.p99Ms),
          route.differences.length > 0 ? colour.red(route.differences.join(', ')) : 'same',
        ]),
      ),
    );
  if (differing.length === 0 && r.routes.length > 0)
    lines.push(colour.dim('every route answered in the same status classes'));
  return lines.join('\n');
}
