// `dayshift import apache httpd.conf`: translate an Apache httpd configuration into a Dayshift one, and
// list every directive that was not translated (file:line) so nothing is dropped silently.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { Command } from 'commander';
import { importApacheFile, type ImportNote } from '../drivers/apache/import.js';
import { configSchema } from '../config/schema.js';
import { releaseAdvice } from '../release/advice.js';
import { CliError, colour, emit, EXIT } from './output.js';

export function register(program: Command): void {
  const command = program
    .command('import')
    .description("translate another load balancer's configuration into a Dayshift configuration");
  command
    .command('apache')
    .description(
      'translate an Apache httpd configuration (VirtualHost, ProxyPass, balancers, access rules, Include files)',
    )
    .argument('<httpd.conf>', 'the main configuration file; Include and IncludeOptional are followed')
    .option('-o, --output <file>', 'write the Dayshift configuration here instead of standard output')
    .option('--force', 'overwrite the output file if it exists')
    .option(
      '--server-root <dir>',
      "where relative Include paths start (default: ServerRoot, else the file's directory)",
    )
    .option('--json', 'print the configuration and the report as JSON')
    .action(async (file: string, opts: { output?: string; force?: boolean; serverRoot?: string; json?: boolean }) => {
      let result;
      try {
        result = importApacheFile(file, opts.serverRoot === undefined ? {} : { serverRoot: opts.serverRoot });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new CliError(`cannot read ${(err as NodeJS.ErrnoException).path ?? file}: file not found`, EXIT.usage);
        throw err;
      }
      const checked = configSchema.safeParse(result.config);
      if (!checked.success) {
        const problems = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
        throw new CliError(
          `the translated configuration does not validate (please report this):\n${problems.join('\n')}`,
          EXIT.failed,
          problems,
        );
      }
      const notes = result.notes.map((n) => ({ ...n, file: relative(process.cwd(), n.file) || n.file }));
      const untranslated = notes.filter((n) => n.kind === 'untranslated').length;
      if (opts.output !== undefined) {
        if (existsSync(opts.output) && !opts.force)
          throw new CliError(`${opts.output} exists: choose another file or add --force`, EXIT.usage);
        await writeFile(opts.output, result.yaml);
      }
      // What a release of the imported config would get wrong (no route for sticky AJP, session_idle).
      const advice = releaseAdvice(checked.data);
      if (opts.json) {
        emit(
          true,
          { ok: true, output: opts.output ?? null, untranslated, config: result.config, notes, advice },
          () => '',
        );
        return;
      }
      const hints = advice.map((a) => `${colour.yellow('hint')}: ${a}\n`).join('');
      const summary = `${Object.keys(result.config.clusters as object).length} cluster(s), ${Object.keys(result.config.sites as object).length} site(s); ${untranslated} directive(s) not translated, ${notes.filter((n) => n.kind === 'approximated').length} approximated, ${notes.filter((n) => n.kind === 'skipped').length} skipped`;
      if (opts.output === undefined) {
        process.stdout.write(result.yaml);
        process.stderr.write(`${report(notes)}${hints}${summary}\n`);
      } else {
        process.stdout.write(`${colour.green('wrote')} ${opts.output}: ${summary}\n${report(notes)}${hints}`);
        process.stdout.write(`check it with: dayshift check -c ${opts.output}\n`);
      }
    });
}

function report(notes: ImportNote[]): string {
  const label = {
    untranslated: colour.red('not translated'),
    approximated: colour.yellow('approximated'),
    skipped: colour.dim('skipped'),
  };
  return notes.map((n) => `${n.file}:${n.line}: ${label[n.kind]}: ${n.directive} — ${n.reason}\n`).join('');
}
