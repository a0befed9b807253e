import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import { loadDbSettings } from '../../src/db/config.js';

async function file(text: string): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-dbconf-'));
  const path = join(dir, 'dayshift.yaml');
  await writeFile(path, text);
  return { dir, path };
}

const servers = `database:
  servers:
    - {name: db1, host: 10.0.0.1, user: switcher, password_file: secret}
    - {name: db2, host: 10.0.0.2, port: 3307, user: switcher, password: inline}
  replication: {user: repl, password: r}
`;

test('a file with only a database section loads: defaults, password files and state_dir relative to the file', async () => {
  const { dir, path } = await file(servers);
  await writeFile(join(dir, 'secret'), 's3cret\n');
  const settings = await loadDbSettings(path);
  assert.deepEqual(
    settings.servers.map((s) => [s.name, s.host, s.port, s.password]),
    [
      ['db1', '10.0.0.1', 3306, 's3cret'],
      ['db2', '10.0.0.2', 3307, 'inline'],
    ],
  );
  assert.equal(settings.stateDir, join(dir, '.dayshift'));
  assert.equal(settings.max_lag, 5000);
  assert.equal(settings.drain, 2000);
  assert.equal(settings.writer.verify_timeout, 5000);
});

test('database errors name file, line, column and key path like every config error', async () => {
  const { path } = await file(`${servers}  max_lag: soon\n  wirter: {}\n`);
  const err = await loadDbSettings(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.message.split('\n'), [
    `${path}:6:12: database.max_lag: expected a duration such as 500ms, 2s, 5m or 1h, found "soon"`,
    `${path}:7:3: database.wirter: unknown key "wirter"; expected one of: servers, replication, writer, max_lag, long_transaction, lock_wait, fence, drain, catchup, connect_timeout, statement_timeout`,
  ]);
});

test('duplicate server names and both password forms are refused', async () => {
  const { path } = await file(`database:
  servers:
    - {name: db1, host: h1, user: u, password: p, password_file: f}
    - {name: db1, host: h2, user: u}
  replication: {user: repl}
`);
  const err = await loadDbSettings(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError);
  assert.match(err.message, /database\.servers\[0\]: set password or password_file, not both/);
  assert.match(err.message, /database\.servers\[1\]\.name: server name "db1" is used twice/);
});

test('the full configuration accepts the optional database key', () => {
  const { config } = parseConfig(
    `listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://x:1"}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [a]}]\n${servers}`,
  );
  assert.equal(config.database?.servers.length, 2);
});
