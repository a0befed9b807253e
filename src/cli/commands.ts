// Every command of the `dayshift` executable, one module each. Add a command by adding its line here.
import type { Command } from 'commander';
import { register as check } from './check.js';
import { register as db } from './db.js';
import { register as demo } from './demo.js';
import { register as exportConfig } from './export.js';
import { register as importConfig } from './import.js';
import { register as preview } from './preview.js';
import { register as release } from './release.js';
import { register as shadow } from './shadow.js';
import { register as sites } from './sites.js';
import { register as start } from './start.js';
import { register as status } from './status.js';
import { register as store } from './store.js';
import { register as traffic } from './traffic.js';
import { register as upgrade } from './upgrade.js';

export function registerCommands(program: Command): void {
  start(program);
  upgrade(program);
  check(program);
  release(program);
  demo(program);
  status(program);
  traffic(program);
  sites(program);
  preview(program);
  shadow(program);
  db(program);
  store(program);
  importConfig(program);
  exportConfig(program);
}
