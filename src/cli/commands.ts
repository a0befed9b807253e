// Every command of the `dayshift` executable, one module each. Add a command by adding its line here.
import type { Command } from 'commander';
import { register as check } from './check.js';
import { register as db } from './db.js';

export function registerCommands(program: Command): void {
  check(program);
  db(program);
}
