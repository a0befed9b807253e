// `dayshift preview`: a signed, expiring link that pins a browser to a cluster on the public site; the
// previews in force (--list); ending one on every instance (--revoke).
import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import type { PreviewLink, PreviewReport } from '../control/previews.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { CliError, colour, emit, EXIT, table } from './output.js';

interface PreviewOptions extends ApiOptions {
  for?: string;
  site?: string;
  allow?: string;
  version?: string;
  list?: boolean;
  revoke?: string;
}

export function register(program: Command): void {
  apiCommand(
    program
      .command('preview [cluster]')
      .description(
        'print a signed, expiring link that shows CLUSTER on the public site to the browser opening it, even while it is out',
      )
      .addHelpText(
        'after',
        '\nExamples:\n  dayshift preview prod-a --for 2h\n  dayshift preview --list\n  dayshift preview --revoke ID',
      ),
  )
    .option('--for <duration>', 'how long the link and its cookie last (default preview.for, 1h)')
    .option('--site <site>', 'the public site (default: the first with a shared route over the cluster)')
    .option(
      '--allow <list>',
      'only these clients may open it: addresses, CIDR blocks or site:NAME, comma-separated (default preview.allow)',
    )
    .option(
      '--version <version>',
      'the version shown in the banner (default: the one the current release deployed to the cluster)',
    )
    .option('--list', 'list the previews in force')
    .option('--revoke <id>', 'end a preview on every instance')
    .action(async (cluster: string | undefined, opts: PreviewOptions) => {
      const json = Boolean(opts.json);
      if ([cluster !== undefined, Boolean(opts.list), opts.revoke !== undefined].filter(Boolean).length !== 1) {
        throw new CliError('give a CLUSTER to preview, or --list, or --revoke ID', EXIT.usage);
      }
      if (opts.for !== undefined && parseDuration(opts.for) === undefined)
        throw new CliError(`bad --for "${opts.for}": expected a duration such as 30m or 2h`, EXIT.usage);
      const client = await AdminClient.connect(opts);
      if (opts.list) {
        const previews = await client.request<PreviewReport[]>('GET', '/api/previews');
        emit(json, previews, (list) =>
          list.length === 0
            ? 'no previews in force'
            : table(
                ['ID', 'CLUSTER', 'SITE', 'UNTIL', 'BY', 'ALLOW'],
                list.map((p) => [
                  p.id,
                  p.cluster,
                  p.site,
                  p.until,
                  `${p.who} (${p.from})`,
                  p.allow?.join(',') ?? 'anyone with the link',
                ]),
              ),
        );
        return;
      }
      if (opts.revoke !== undefined) {
        await client.request('DELETE', `/api/previews/${encodeURIComponent(opts.revoke)}`);
        emit(
          json,
          { id: opts.revoke, revoked: true },
          () => `preview ${colour.bold(opts.revoke!)} revoked: its browsers are back on public routing`,
        );
        return;
      }
      const link = await client.request<PreviewLink>('POST', '/api/previews', {
        cluster,
        ...(opts.for !== undefined ? { for: opts.for } : {}),
        ...(opts.site !== undefined ? { site: opts.site } : {}),
        ...(opts.allow !== undefined
          ? {
              allow: opts.allow
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean),
            }
          : {}),
        ...(opts.version !== undefined ? { version: opts.version } : {}),
      });
      emit(json, link, (l) =>
        [
          l.url,
          colour.dim(
            `preview ${l.id} of ${l.cluster}${l.version ? ` (version ${l.version})` : ''} on site ${l.site}, until ${l.until}${l.allow ? `, for ${l.allow.join(', ')}` : ''}`,
          ),
          colour.dim(`end it for everyone: dayshift preview --revoke ${l.id}`),
        ].join('\n'),
      );
    });
}
