// `dayshift upgrade`: replace the running Dayshift with the code now installed, refusing no connection.
import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import type { UpgradeResult } from '../upgrade/upgrade.js';
import { AdminClient, apiCommand, type ApiOptions } from './client.js';
import { CliError, colour, emit, EXIT } from './output.js';

export function register(program: Command): void {
  apiCommand(
    program
      .command('upgrade')
      .description(
        'start the code now installed as a new generation on the same listening sockets, and retire the running one',
      )
      .option('--timeout <duration>', 'how long the new generation may take to serve', '60s')
      .addHelpText(
        'after',
        '\nThe new generation runs with the same config file and arguments and takes its state from the store; a\n' +
          'release under way carries on in it. The command returns once it serves; the old generation then finishes\n' +
          'its requests in flight and exits. SIGUSR2 to `dayshift start` does the same. Under systemd, use\n' +
          '`systemctl restart` instead (docs/operations.md).\n' +
          'Exit codes: 1 the new generation failed (the old one serves on; the reason is printed), 3 refused (an\n' +
          'upgrade under way, a release step not safe to repeat, systemd), 5 admin API unreachable.',
      ),
  ).action(async (opts: ApiOptions & { timeout: string }) => {
    const timeoutMs = parseDuration(opts.timeout);
    if (timeoutMs === undefined || timeoutMs <= 0 || timeoutMs > 600_000)
      throw new CliError(`bad --timeout "${opts.timeout}": expected a duration up to 10m, such as 60s`, EXIT.usage);
    const client = await AdminClient.connect(opts);
    const result = await client.request<UpgradeResult>('POST', '/api/upgrade', { timeoutMs });
    emit(
      Boolean(opts.json),
      result,
      (r) =>
        `${colour.green('upgraded')}: dayshift ${r.old.version} (pid ${r.old.pid}) → ${r.new.version} (pid ${r.new.pid})\n` +
        `pid ${r.new.pid} serves; pid ${r.old.pid} finishes its requests in flight and exits` +
        (r.release ? `\nrelease ${r.release} carries on in pid ${r.new.pid}` : ''),
    );
  });
}
