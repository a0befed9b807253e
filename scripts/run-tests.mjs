#!/usr/bin/env node
// Runs every compiled *.test.js under dist/test with node's test runner. The file list is built here
// rather than left to `node --test DIR` because directory handling differs between Node 20, 22 and 24.
// Extra arguments are passed through as name filters: `npm test -- ajp` runs files whose path has "ajp".
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.js')) files.push(path);
  }
})(root);
const chosen = files.filter((f) => filters.length === 0 || filters.some((p) => relative(root, f).includes(p)));
if (chosen.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=600000', ...chosen], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
