// Every command and subcommand answers --help with its usage, and exits 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerCommands } from '../../src/cli/commands.js';
import { runCli } from '../support/cli.js';

function commandPaths(): string[][] {
  const program = new Command('dayshift');
  registerCommands(program);
  const paths: string[][] = [];
  const walk = (command: Command, prefix: string[]) => {
    for (const sub of command.commands) {
      const path = [...prefix, sub.name()];
      paths.push(path);
      walk(sub, path);
    }
  };
  walk(program, []);
  return paths;
}

test('every command has --help with a description', async () => {
  const paths = commandPaths();
  assert.ok(paths.length >= 20, `found ${paths.length} commands`);
  for (const path of paths) {
    const { code, stdout } = await runCli([...path, '--help']);
    assert.equal(code, 0, `dayshift ${path.join(' ')} --help`);
    assert.match(stdout, new RegExp(`^Usage: dayshift ${path.join(' ')}`, 'm'), `usage line of ${path.join(' ')}`);
  }
});

test('an unknown command or option is a usage error (exit 2) with help', async () => {
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const option = await runCli(['drain', 'prod-a', '--sideways']);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /unknown option '--sideways'/);
});
