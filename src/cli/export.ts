// `dayshift export apache|haproxy`: write the configuration of the load balancer a team keeps, equivalent
// to the Dayshift configuration, ready to be driven by Dayshift's apache or haproxy driver.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, loadConfigFile } from '../config/load.js';
import { exportApache } from '../drivers/apache/export.js';
import type { ExportResult } from '../drivers/export-notes.js';
import { exportHaproxy } from '../drivers/haproxy/export.js';
import { CliError, colour, emit, EXIT } from './output.js';
import { messageOf } from '../errors.js';

interface ExportOptions {
  config: string;
  output?: string;
  force?: boolean;
  json?: boolean;
  manager: string;
  socket: string;
  stateFile: string;
}

export function register(program: Command): void {
  program
    .command('export')
    .description(
      'write an Apache httpd or HAProxy configuration equivalent to the Dayshift one, for the apache or haproxy driver',
    )
    .argument('<target>', 'apache or haproxy')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('-o, --output <file>', 'write here instead of standard output')
    .option('--force', 'overwrite the output file if it exists')
    .option('--manager <host:port>', 'apache: listener of the balancer-manager Dayshift drives', '127.0.0.1:8099')
    .option('--socket <path>', 'haproxy: the admin Runtime API socket', '/run/haproxy/dayshift.sock')
    .option('--state-file <path>', 'haproxy: the server-state-file', '/var/lib/haproxy/dayshift.state')
    .option('--json', 'print the configuration text, the notes and the driver section as JSON')
    .action(async (target: string, opts: ExportOptions) => {
      if (target !== 'apache' && target !== 'haproxy')
        throw new CliError(`unknown export target "${target}": expected apache or haproxy`, EXIT.usage);
      const { config, file } = await loadConfigFile(opts.config);
      if (config.listen.http === undefined && config.listen.https === undefined) {
        throw new CliError(
          `${file} has no listen.http or listen.https: export writes them as the addresses ${target} listens on; add them first`,
          EXIT.usage,
        );
      }
      let result: ExportResult;
      try {
        result =
          target === 'apache'
            ? exportApache(config, { manager: opts.manager, source: basename(file) })
            : exportHaproxy(config, { socket: opts.socket, stateFile: opts.stateFile, source: basename(file) });
      } catch (err) {
        throw new CliError(messageOf(err), EXIT.usage);
      }
      if (opts.output !== undefined) {
        if (existsSync(opts.output) && !opts.force)
          throw new CliError(`${opts.output} exists: choose another file or add --force`, EXIT.usage);
        await writeFile(opts.output, result.text);
      }
      if (opts.json) {
        emit(true, { ok: true, target, output: opts.output ?? null, ...result }, () => '');
        return;
      }
      const notes = result.notes.map((n) => `${colour.yellow('note')} ${n.path}: ${n.message}\n`).join('');
      if (opts.output === undefined) {
        process.stdout.write(result.text);
        process.stderr.write(notes);
      } else {
        process.stdout.write(
          `${colour.green('wrote')} ${opts.output} (${target}); ${result.notes.length} note(s)\n${notes}`,
        );
        process.stdout.write(`driver section for ${basename(file)}: ${JSON.stringify(result.driver)}\n`);
      }
    });
}
