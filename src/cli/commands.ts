// Every command of the `dayshift` executable, one module each. Add a command by adding its line here.
import type { Command } from 'commander';
import { register as check } from './check.js';
import { register as exportConfig } from './export.js';
import { register as importConfig } from './import.js';

export function registerCommands(program: Command): void {
  check(program);
  importConfig(program);
  exportConfig(program);
}
