// Every command of the `dayshift` executable, one module each. Add a command by adding its line here.
import type { Command } from 'commander';
import { register as check } from './check.js';
import { register as sites } from './sites.js';
import { register as start } from './start.js';
import { register as status } from './status.js';
import { register as store } from './store.js';
import { register as traffic } from './traffic.js';

export function registerCommands(program: Command): void {
  start(program);
  check(program);
  status(program);
  traffic(program);
  sites(program);
  store(program);
}
