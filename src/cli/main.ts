#!/usr/bin/env node
// The `dayshift` executable: parses the command line and maps errors to exit codes.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors.js';
import { registerCommands } from './commands.js';
import { colour, EXIT, exitCodeOf } from './output.js';
import { messageOf } from '../errors.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

// `dayshift status | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

const program = new Command('dayshift')
  .description('Release web applications in the middle of the working day, with no downtime.')
  .version(pkg.version)
  .showHelpAfterError()
  // Program options (--version) only before the command, so that `release start --version V` is the release's.
  .enablePositionalOptions()
  .exitOverride();
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version exit through here too, with code 0.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`${colour.red('config error')}\n${err.message}\n`);
    return EXIT.usage;
  }
  const exitCode = exitCodeOf(err);
  if (exitCode !== undefined) {
    process.stderr.write(`${colour.red('error:')} ${messageOf(err)}\n`);
    return exitCode;
  }
  process.stderr.write(`${colour.red('error:')} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.failed;
}
