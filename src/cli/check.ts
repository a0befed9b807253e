// `dayshift check`: validate a configuration file without starting anything.
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, loadConfigFile } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { releaseAdvice } from '../release/advice.js';
import { colour, emit, EXIT, warningLines } from './output.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('validate a configuration file without starting anything (exit 2 when it is invalid)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .option('--json', 'print the result as JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      try {
        const { config, file } = await loadConfigFile(opts.config);
        const summary = {
          ok: true,
          file,
          sites: Object.keys(config.sites),
          clusters: Object.fromEntries(Object.entries(config.clusters).map(([name, c]) => [name, c.members.length])),
          // Valid, but a release would not do what it says (src/release/advice.ts): still exit 0.
          warnings: releaseAdvice(config),
        };
        emit(
          Boolean(opts.json),
          summary,
          (s) =>
            `${colour.green('ok')} ${s.file}: ${s.sites.length} site(s), ${Object.keys(s.clusters).length} cluster(s), ` +
            `${Object.values(s.clusters).reduce((a, b) => a + b, 0)} member(s)${warningLines(s.warnings)}`,
        );
      } catch (err) {
        if (!(err instanceof ConfigError) || !opts.json) throw err;
        emit(true, { ok: false, problems: err.problems }, () => '');
        process.exitCode = EXIT.usage;
      }
    });
}
