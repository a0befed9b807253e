// Which of the main's Node.js options a worker starts with: all but the inspector's and code to run,
// in every way Node takes them written (`=value` or the next argument, `_` for `-`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workerExecArgv } from '../../src/workers/exec-argv.js';

const cases: [behaviour: string, main: string[], worker: string[]][] = [
  ['no options: none', [], []],
  [
    'memory limits, source maps and preloads are passed on, in order',
    ['--max-old-space-size=4096', '--enable-source-maps', '-r', 'dotenv/config', '--import', './apm.mjs'],
    ['--max-old-space-size=4096', '--enable-source-maps', '-r', 'dotenv/config', '--import', './apm.mjs'],
  ],
  [
    '--inspect stays with the main (its port is taken)',
    ['--inspect', '--enable-source-maps'],
    ['--enable-source-maps'],
  ],
  ['--inspect=host:port stays with the main', ['--inspect=127.0.0.1:9229', '--no-warnings'], ['--no-warnings']],
  [
    '--inspect-brk stays with the main (a held worker would miss its start deadline)',
    ['--inspect-brk=0.0.0.0:9229', '--inspect-wait'],
    [],
  ],
  [
    '--inspect-port and --debug-port stay, with their value as the next argument',
    ['--inspect-port', '9230', '--debug-port', '9231', '--max-old-space-size=512'],
    ['--max-old-space-size=512'],
  ],
  [
    '--inspect-port=N stays, and the next option is kept',
    ['--inspect-port=9230', '--trace-warnings'],
    ['--trace-warnings'],
  ],
  [
    '--inspect_port with an underscore stays, as Node reads it',
    ['--inspect_port', '9230', '--trace-warnings'],
    ['--trace-warnings'],
  ],
  ['--inspect-publish-uid stays with its value', ['--inspect-publish-uid', 'http', '--expose-gc'], ['--expose-gc']],
  [
    'code given with -e, --eval, -p, --print or -pe stays (the worker runs its script)',
    ['-e', 'import("x")', '--eval=1', '-p', '2', '--print', '3', '-pe', '4', '--stack-size=2000'],
    ['--stack-size=2000'],
  ],
];

for (const [behaviour, main, worker] of cases)
  test(behaviour, () => {
    assert.deepEqual(workerExecArgv(main), worker);
  });
