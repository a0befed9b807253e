import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { CLI, runCli } from '../support/cli.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, waitFor } from '../support/proxy.js';
import { freePort } from '../../src/ports.js';

describe('dayshift start', () => {
  let dir: string;
  let members: TestMember[] = [];
  let port: number;
  let adminPort: number;
  const children = new Set<ChildProcess>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-start-'));
    members = await Promise.all(
      ['a1', 'b1'].map((name) =>
        startMember(name, (req, res) => {
          // ?slow=MS keeps the request in flight for that long.
          const slow = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('slow') ?? 0);
          req.resume();
          setTimeout(() => res.end(name), slow);
        }),
      ),
    );
    port = await freePort();
    adminPort = await freePort();
    await writeConfig();
  });
  // A failed test must not leave its Dayshift holding the ports, or a broken config, for the next one.
  afterEach(async () => {
    for (const child of children) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await writeConfig();
  });
  after(async () => {
    await Promise.all(members.map((m) => m.close()));
    await rm(dir, { recursive: true, force: true });
  });

  function writeConfig(extra: Record<string, unknown> = {}): Promise<void> {
    return writeFile(
      join(dir, 'dayshift.yaml'),
      stringify({
        listen: { http: `127.0.0.1:${port}` },
        admin: { listen: `127.0.0.1:${adminPort}` },
        log: { format: 'json' },
        clusters: {
          'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }] },
          'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
        },
        health: { enabled: false },
        sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
        ...extra,
      }),
    );
  }

  async function start(): Promise<{ child: ChildProcess; output: () => string }> {
    const child = spawn(process.execPath, [CLI, 'start', '--config', join(dir, 'dayshift.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c));
    child.stderr!.on('data', (c: Buffer) => (output += c));
    await waitFor(() => output.includes('started') || child.exitCode !== null, 20_000, 'dayshift to start');
    assert.equal(child.exitCode, null, output);
    return { child, output: () => output };
  }
  const cli = (...args: string[]) => runCli([...args, '--config', join(dir, 'dayshift.yaml')]);

  test('runtime state survives kill -9 and restart', async () => {
    const first = await start();
    assert.match(first.output(), /admin token generated in .*admin\.token/);
    assert.equal((await cli('out', 'prod-a')).code, 0);
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    const second = await start();
    const status = JSON.parse((await cli('status', '--json')).stdout);
    assert.equal(status.clusters[0].traffic, 'out');
    for (let i = 0; i < 5; i++) assert.equal((await request(port)).body, 'b1');
    assert.equal((await cli('live', 'prod-a')).code, 0);
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
  });

  test('SIGTERM lets requests in flight finish, then exits 0', async () => {
    const { child } = await start();
    const inFlight = request(port, { path: '/?slow=700' });
    await waitFor(
      () => members.some((m) => m.received.some((r) => r.url === '/?slow=700')),
      5000,
      'the request to reach a member',
    );
    child.kill('SIGTERM');
    const reply = await inFlight;
    assert.equal(reply.status, 200);
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
  });

  test('SIGHUP reload: a bad config is refused, logged, and the running one stays', async () => {
    const { child, output } = await start();
    const good = await readFile(join(dir, 'dayshift.yaml'), 'utf8');
    await writeFile(
      join(dir, 'dayshift.yaml'),
      good.replace('round-robin', 'sideways').replace('health:', 'health:\n  interval: soon'),
    );
    child.kill('SIGHUP');
    await waitFor(() => output().includes('configuration refused'), 10_000, 'the refusal to be logged');
    assert.match(output(), /dayshift\.yaml:\d+:\d+: health\.interval: expected a duration/);
    assert.equal((await request(port)).status, 200);
    const viaCli = await cli('reload');
    assert.equal(viaCli.code, 2);
    assert.match(viaCli.stderr, /configuration refused, the running one stays/);
    await writeFile(join(dir, 'dayshift.yaml'), good);
    assert.equal((await cli('reload')).code, 0);
    child.kill('SIGTERM');
    await once(child, 'exit');
  });

  test('a port in use, a bad config and an unresolvable member are clear errors with non-zero exits', async () => {
    const blocker = http.createServer().listen(port, '127.0.0.1');
    await once(blocker, 'listening');
    const busy = await runCli(['start', '--config', join(dir, 'dayshift.yaml')]);
    blocker.close();
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*(in use|EADDRINUSE)`, 'i'));

    await writeConfig({
      clusters: {
        'prod-a': { members: [{ url: 'http://no-such-host.invalid:80' }] },
        'prod-b': { members: [{ url: members[1]!.url }] },
      },
    });
    const unresolvable = await runCli(['start', '--config', join(dir, 'dayshift.yaml')]);
    assert.equal(unresolvable.code, 1);
    assert.match(
      unresolvable.stderr,
      /cannot start: clusters\.prod-a\.members\[0\]: cannot resolve no-such-host\.invalid/,
    );

    await writeFile(join(dir, 'bad.yaml'), 'listen: {http: 8080}\nclusters: {}\nsites: {}\nfoo: 1\n');
    const bad = await runCli(['start', '--config', join(dir, 'bad.yaml')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml:4:1: foo: unknown key "foo"/);
  });

  test('check validates without starting, with --json for scripts', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'listen: {http: 8080}\nclusters: {}\nsites: {}\nfoo: 1\n');
    const ok = await runCli(['check', '--config', join(dir, 'dayshift.yaml')]);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /ok .*dayshift\.yaml: 1 site\(s\), 2 cluster\(s\), 2 member\(s\)/);
    const bad = await runCli(['check', '--config', join(dir, 'bad.yaml'), '--json']);
    assert.equal(bad.code, 2);
    assert.equal(JSON.parse(bad.stdout).problems[0].path, 'foo');
  });
});
