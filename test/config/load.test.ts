import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';

const origin = fileURLToPath(new URL('../../../examples/origin/dayshift.yaml', import.meta.url));

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'bad.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message.split('\n');
  }
  assert.fail('expected the config to be refused');
}

test('the origin example loads exactly as written', async () => {
  const { config } = await loadConfigFile(origin);
  assert.deepEqual(config.listen.http, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(Object.keys(config.clusters), ['prod-a', 'prod-b']);
  assert.equal(config.clusters['prod-b']!.members[1]!.weight, 2);
  assert.equal(config.health.interval, 2000);
  assert.equal(config.sites.public!.routes[0]!.balance, 'least-busy');
  assert.deepEqual(config.sites.public!.routes[0]!.sticky?.mode, 'route');
  assert.deepEqual(config.sites['qa-a']!.allow, ['127.0.0.0/8', '10.0.0.0/8']);
});

test('a bad value names file, line, column, key path, what was found and what is expected', () => {
  const lines = problems(
    'listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://x:1"}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [a], balance: random}]\n',
  );
  assert.deepEqual(lines, [
    'bad.yaml:8:39: sites.s.routes[0].balance: Invalid option: expected one of "round-robin"|"least-busy"|"p2c-ewma", found string "random"',
  ]);
});

test('an unknown key is pointed at and the known keys are listed', () => {
  const [line] = problems(
    'listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://x:1", wieght: 2}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [a]}]\n',
  );
  assert.match(
    line!,
    /^bad\.yaml:4:35: clusters\.a\.members\[0\]\.wieght: unknown key "wieght"; expected one of: url, route, weight/,
  );
});

test('a route naming an undefined cluster is refused with the defined ones listed', () => {
  const [line] = problems(
    'listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://x:1"}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [b]}]\n',
  );
  assert.match(
    line!,
    /^bad\.yaml:8:26: sites\.s\.routes\[0\]\.clusters\[0\]: unknown cluster "b"; defined clusters: a$/,
  );
});

test('YAML syntax errors carry their position', () => {
  const [line] = problems('listen: {http: [8080\n');
  assert.match(line!, /^bad\.yaml:\d+:\d+: /);
});

test('durations and sizes are parsed, bad ones refused', () => {
  const lines = problems(
    'listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://x:1"}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [a]}]\nhealth: {interval: fast}\n',
  );
  assert.deepEqual(lines, [
    'bad.yaml:9:20: health.interval: expected a duration such as 500ms, 2s, 5m or 1h, found "fast"',
  ]);
});

test('a release webhook needs an http(s) URL and known event names, reported where they are', () => {
  const base =
    'listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://x:1"}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [a]}]\n';
  const lines = problems(
    `${base}release:\n  notify:\n    - { url: "ftp://hooks.example.com/x", events: [started, deployed] }\n`,
  );
  assert.ok(
    lines.some((l) => /^bad\.yaml:11:\d+: release\.notify\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /^bad\.yaml:11:\d+: release\.notify\[0\]\.events\[1\]: .*"started".*"interrupted"/.test(l)),
    lines.join('\n'),
  );
});
