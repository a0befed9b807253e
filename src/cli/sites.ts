// Site commands: maintenance, pause, resume.
import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { CliError, colour, emit, EXIT } from './output.js';

const enc = encodeURIComponent;

export function register(program: Command): void {
  apiCommand(
    program
      .command('maintenance <site> [message]')
      .description('answer every request on a site with a 503 maintenance page (or end it with --off)'),
  )
    .option('--for <duration>', 'end maintenance by itself after this long, e.g. 15m')
    .option('--off', 'end maintenance now')
    .action(async (site: string, message: string | undefined, opts: ApiOptions & { for?: string; off?: boolean }) => {
      const client = await AdminClient.connect(opts);
      if (opts.off) {
        const state = await client.request('DELETE', `/api/sites/${enc(site)}/maintenance`);
        emit(
          Boolean(opts.json),
          { site, maintenance: false, desired: state },
          () => `${colour.bold(site)}: maintenance ended`,
        );
        return;
      }
      if (opts.for && parseDuration(opts.for) === undefined)
        throw new CliError(`bad --for "${opts.for}": expected a duration such as 15m`, EXIT.usage);
      const body = {
        message: message ?? 'This site is down for maintenance. Please try again shortly.',
        ...(opts.for ? { for: opts.for } : {}),
      };
      const state = await client.request('POST', `/api/sites/${enc(site)}/maintenance`, body);
      emit(
        Boolean(opts.json),
        { site, maintenance: true, desired: state },
        () => `${colour.bold(site)}: maintenance on${opts.for ? ` for ${opts.for}` : ''}`,
      );
    });

  apiCommand(
    program
      .command('pause <site>')
      .description('hold new requests on a site (e.g. during a database switchover), then serve them'),
  )
    .option('--for <duration>', 'hold requests at most this long', '30s')
    .option('--reject', 'when the time is up, answer held requests with 503 instead of serving them')
    .action(async (site: string, opts: ApiOptions & { for: string; reject?: boolean }) => {
      if (parseDuration(opts.for) === undefined)
        throw new CliError(`bad --for "${opts.for}": expected a duration such as 30s`, EXIT.usage);
      const client = await AdminClient.connect(opts);
      const state = await client.request('POST', `/api/sites/${enc(site)}/pause`, {
        for: opts.for,
        then: opts.reject ? 'reject' : 'serve',
      });
      emit(
        Boolean(opts.json),
        { site, paused: true, desired: state },
        () => `${colour.bold(site)}: paused for up to ${opts.for}; \`dayshift resume ${site}\` releases held requests`,
      );
    });

  apiCommand(program.command('resume <site>').description('release the requests a paused site holds')).action(
    async (site: string, opts: ApiOptions) => {
      const client = await AdminClient.connect(opts);
      const state = await client.request('DELETE', `/api/sites/${enc(site)}/pause`);
      emit(Boolean(opts.json), { site, paused: false, desired: state }, () => `${colour.bold(site)}: resumed`);
    },
  );

  apiCommand(
    program
      .command('reload')
      .description('re-read the config file; a bad one is refused (exit 2) and the running one stays'),
  ).action(async (opts: ApiOptions) => {
    const client = await AdminClient.connect(opts);
    const result = await client.request<{ file: string }>('POST', '/api/reload');
    emit(Boolean(opts.json), result, (r) => `${colour.green('reloaded')} ${r.file}`);
  });
}
