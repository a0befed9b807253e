import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request as httpsRequest } from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import { stringify } from 'yaml';
import { adoptInheritedSockets } from '../src/socket-activation.js';
import { freePort } from '../src/ports.js';
import { selfSigned } from './support/certs.js';
import { CLI } from './support/cli.js';
import { startMember, type TestMember } from './support/members.js';
import { requirePeer } from './support/peers.js';
import { request, waitFor } from './support/proxy.js';

describe('socket activation', () => {
  let dir: string;
  let member: TestMember;
  const children = new Set<ChildProcess>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-socket-activation-'));
    member = await startMember('m1');
  });
  afterEach(async () => {
    for (const child of children) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    // A supervised Dayshift outlives its killed supervisor: stop it by the PID it wrote.
    for (const pid of await supervisedPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(join(dir, 'pids'), { force: true });
  });
  after(async () => {
    await member.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function supervisedPids(): Promise<number[]> {
    const text = await readFile(join(dir, 'pids'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map(Number);
  }

  async function writeConfig(listen: Record<string, unknown>, adminPort: number): Promise<string> {
    const file = join(dir, 'dayshift.yaml');
    await writeFile(
      file,
      stringify({
        listen,
        admin: { listen: `127.0.0.1:${adminPort}` },
        state_dir: join(dir, 'state'),
        log: { format: 'json' },
        clusters: { 'prod-a': { members: [{ url: member.url, route: 'a1' }] } },
        health: { enabled: false },
        sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['prod-a'] }] } },
      }),
    );
    return file;
  }

  /** systemd-socket-activate listening on `sockets` (name → port, or its own options), running `command` once a connection comes. */
  function activate(
    binary: string,
    sockets: [string, number][] | string[],
    command: string[],
  ): { child: ChildProcess; output: () => string } {
    const options = sockets.every((s) => typeof s === 'string')
      ? sockets
      : [
          ...sockets.flatMap(([, port]) => ['-l', `127.0.0.1:${port}`]),
          `--fdname=${sockets.map(([name]) => name).join(':')}`,
        ];
    const args = [...options, ...command];
    const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c));
    child.stderr!.on('data', (c: Buffer) => (output += c));
    return { child, output: () => output };
  }

  test('reading LISTEN_* unsets them, as sd_listen_fds(1) does, so children do not take the sockets', () => {
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: String(process.pid),
      LISTEN_FDS: '0',
      LISTEN_FDNAMES: '',
      PATH: '/bin',
    };
    assert.equal(adoptInheritedSockets([], env), 0);
    assert.deepEqual(env, { PATH: '/bin' });
    const other: NodeJS.ProcessEnv = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1', LISTEN_FDNAMES: 'http' };
    assert.equal(adoptInheritedSockets([], other), 0, 'sockets meant for another process are not ours');
    assert.deepEqual(other, {});
  });

  test('serves http, https and admin on the sockets systemd-socket-activate hands down, and binds a listener it does not', async (t: TestContext) => {
    const binary = requirePeer(t, 'systemd-socket-activate', 'systemd');
    if (!binary) return;
    const [http, https, admin, bound] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const tls = selfSigned(dir, 'fallback', 'shop.test');
    const config = await writeConfig(
      { http: [`127.0.0.1:${http}`, `127.0.0.1:${bound}`], https: `127.0.0.1:${https}`, tls },
      admin,
    );
    const run = activate(
      binary,
      [
        ['http', http],
        ['https', https],
        ['admin', admin],
      ],
      [process.execPath, CLI, 'start', '--config', config],
    );
    await waitFor(
      () => run.output().includes('Listening on') || run.child.exitCode !== null,
      20_000,
      'systemd-socket-activate to listen',
    );
    // systemd-socket-activate starts Dayshift at the first connection: that connection waits in the queue.
    const first = await request(http);
    assert.equal(first.status, 200, run.output());
    assert.equal(first.body.split(' ')[0], 'm1');
    await waitFor(() => run.output().includes('started'), 20_000, 'the start to be logged');
    assert.match(run.output(), /"inheritedSockets":3/);
    assert.equal((await request(bound)).status, 200, 'the listener with no inherited socket is bound as usual');
    const secure = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: https,
          servername: 'shop.test',
          headers: { host: 'shop.test' },
          rejectUnauthorized: false,
          agent: false,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(secure, 200, 'the https listener serves TLS on its inherited socket');
    const health = await fetch(`http://127.0.0.1:${admin}/healthz`);
    assert.equal(health.status, 200, 'the admin API answers on its inherited socket');
  });

  test('several addresses on one port each get the socket bound to their host', async (t: TestContext) => {
    const binary = requirePeer(t, 'systemd-socket-activate', 'systemd');
    if (!binary) return;
    const [http, admin] = await Promise.all([freePort(), freePort()]);
    const config = await writeConfig({ http: [`127.0.0.1:${http}`, `127.0.0.2:${http}`] }, admin);
    // In the other order than the config's: matching by port alone would swap them.
    const run = activate(
      binary,
      ['-l', `127.0.0.2:${http}`, '-l', `127.0.0.1:${http}`, '--fdname=http:http'],
      [process.execPath, CLI, 'start', '--config', config],
    );
    await waitFor(
      () => run.output().includes('Listening on') || run.child.exitCode !== null,
      20_000,
      'systemd-socket-activate to listen',
    );
    assert.equal((await request(http)).status, 200, run.output());
    await waitFor(() => run.output().includes('started'), 20_000, 'the start to be logged');
    assert.match(
      run.output(),
      new RegExp(`"listeners":\\["http://127\\.0\\.0\\.1:${http}","http://127\\.0\\.0\\.2:${http}"\\]`),
    );
    assert.match(run.output(), /"inheritedSockets":2/);
  });

  // Each case: the sockets systemd-socket-activate passes (its options, given the configured http port
  // and a port the config does not name), and what the refusal says.
  // A socket that could be matched also names the configured listeners it was matched against.
  const refusals: {
    name: string;
    options: (http: number, stray: number) => string[];
    says: (http: number, stray: number) => RegExp;
    listsConfigured: boolean;
  }[] = [
    {
      name: 'a port the config does not name',
      options: (_http, stray) => ['-l', `127.0.0.1:${stray}`, '--fdname=http'],
      says: (_http, stray) => new RegExp(`serve no configured listener: fd 3 named "http" on 127\\.0\\.0\\.1:${stray}`),
      listsConfigured: true,
    },
    {
      name: 'a name Dayshift does not serve',
      options: (http) => ['-l', `127.0.0.1:${http}`, '--fdname=api'],
      says: (http) => new RegExp(`serve no configured listener: fd 3 named "api" on 127\\.0\\.0\\.1:${http}`),
      listsConfigured: true,
    },
    {
      name: 'a socket without a name',
      options: (http) => ['-l', `127.0.0.1:${http}`],
      says: () => /1 inherited socket\(s\) but LISTEN_FDNAMES names 0: give each socket unit FileDescriptorName=/,
      listsConfigured: false,
    },
    {
      name: 'a datagram socket',
      options: (http) => ['--datagram', '-l', `127.0.0.1:${http}`, '--fdname=http'],
      says: () => /inherited fd 3 \(http\) is not a listening TCP socket/,
      listsConfigured: false,
    },
  ];
  for (const refusal of refusals) {
    test(`an inherited socket that serves no configured listener stops the start with exit 2: ${refusal.name}`, async (t: TestContext) => {
      const binary = requirePeer(t, 'systemd-socket-activate', 'systemd');
      if (!binary) return;
      const [http, admin, stray] = await Promise.all([freePort(), freePort(), freePort()]);
      const config = await writeConfig({ http: `127.0.0.1:${http}` }, admin);
      const run = activate(binary, refusal.options(http, stray), [process.execPath, CLI, 'start', '--config', config]);
      await waitFor(
        () => run.output().includes('Listening on') || run.child.exitCode !== null,
        20_000,
        'systemd-socket-activate to listen',
      );
      // systemd-socket-activate runs the command at the first connection (or datagram).
      const port = Number(/Listening on 127\.0\.0\.1:(\d+)/.exec(run.output())![1]);
      if (refusal.options(http, stray).includes('--datagram')) {
        const udp = createSocket('udp4');
        udp.send('x', port, '127.0.0.1', () => udp.close());
      } else {
        await request(port).catch(() => undefined);
      }
      const [code] = (await once(run.child, 'exit')) as [number];
      assert.equal(code, 2, run.output());
      assert.match(run.output(), refusal.says(http, stray));
      if (refusal.listsConfigured) {
        assert.match(
          run.output(),
          new RegExp(`Configured: http 127\\.0\\.0\\.1:${http}, admin 127\\.0\\.0\\.1:${admin}`),
        );
      }
    });
  }

  test('dayshift db front serves the writer endpoint on the socket named writer', async (t: TestContext) => {
    const binary = requirePeer(t, 'systemd-socket-activate', 'systemd');
    if (!binary) return;
    // The front splices bytes to the primary in the writer state: an echo server stands in for it.
    const primary = createServer((socket) => socket.pipe(socket));
    primary.listen(0, '127.0.0.1');
    await once(primary, 'listening');
    t.after(() => primary.close());
    const primaryPort = (primary.address() as AddressInfo).port;
    const writer = await freePort();
    const stateDir = join(dir, 'db-state');
    await mkdir(stateDir, { recursive: true });
    await writeFile(
      join(stateDir, 'db-writer.json'),
      JSON.stringify({ primary: 'a', host: '127.0.0.1', port: primaryPort, at: new Date().toISOString() }),
    );
    const config = join(dir, 'db.yaml');
    await writeFile(
      config,
      stringify({
        state_dir: stateDir,
        database: {
          servers: [
            { name: 'a', host: '127.0.0.1', port: primaryPort, user: 'u', password: 'p' },
            { name: 'b', host: '127.0.0.1', port: 1, user: 'u', password: 'p' },
          ],
          replication: { user: 'r', password: 'p' },
          writer: { listen: `127.0.0.1:${writer}` },
        },
      }),
    );
    const run = activate(binary, [['writer', writer]], [process.execPath, CLI, 'db', 'front', '--config', config]);
    await waitFor(
      () => run.output().includes('Listening on') || run.child.exitCode !== null,
      20_000,
      'systemd-socket-activate to listen',
    );
    const client = connect(writer, '127.0.0.1');
    client.write('ping');
    const [echoed] = (await once(client, 'data')) as [Buffer];
    client.destroy();
    assert.equal(echoed.toString(), 'ping', run.output());
    assert.match(run.output(), new RegExp(`writer endpoint listening on 127\\.0\\.0\\.1:${writer} → a`));
  });

  /** Restarts Dayshift once behind a socket held as systemd holds it, under a bounded load of new connections; returns how requests failed. */
  async function restartUnderLoad(t: TestContext): Promise<string[] | undefined> {
    const binary = requirePeer(t, 'systemd-socket-activate', 'systemd');
    if (!binary) return undefined;
    const [http, admin] = await Promise.all([freePort(), freePort()]);
    const config = await writeConfig({ http: `127.0.0.1:${http}` }, admin);
    await rm(join(dir, 'stop'), { force: true });
    // The shell holds the socket as systemd does across restarts, and like systemd sets LISTEN_PID to
    // the PID of the process it starts (exec keeps the shell's PID).
    const supervisor = 'while [ ! -e stop ]; do sh -c \'echo $$ >> pids; LISTEN_PID=$$ exec "$@"\' dayshift "$@"; done';
    const run = activate(
      binary,
      [['http', http]],
      ['/bin/sh', '-c', supervisor, 'supervisor', process.execPath, CLI, 'start', '--config', config],
    );
    await waitFor(
      () => run.output().includes('Listening on') || run.child.exitCode !== null,
      20_000,
      'systemd-socket-activate to listen',
    );

    const failures: string[] = [];
    let served = 0;
    let running = true;
    const deadline = Date.now() + 60_000;
    const client = async () => {
      while (running && Date.now() < deadline) {
        try {
          const reply = await request(http);
          if (reply.status === 200) served++;
          else failures.push(`status ${reply.status}`);
        } catch (err) {
          failures.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    try {
      await waitFor(
        async () => (await supervisedPids()).length === 1 && served >= 20,
        20_000,
        'the first Dayshift to serve',
      );
      const [firstPid] = await supervisedPids();
      const before = served;
      process.kill(firstPid!, 'SIGTERM');
      await waitFor(async () => (await supervisedPids()).length === 2, 20_000, 'the second Dayshift to start');
      await waitFor(() => served >= before + 50, 20_000, 'the second Dayshift to serve');
    } finally {
      running = false;
      await Promise.all(clients);
    }
    await writeFile(join(dir, 'stop'), '');
    const [, secondPid] = await supervisedPids();
    process.kill(secondPid!, 'SIGTERM');
    await once(run.child, 'exit');
    return failures;
  }

  // Neither refused (the held socket queues connections while no process accepts) nor reset (the
  // stopping process answers the connections it accepted in its last moment before closing them).
  test('a restart behind a held socket refuses and fails no request', async (t: TestContext) => {
    const failures = await restartUnderLoad(t);
    if (!failures) return;
    assert.deepEqual(failures, []);
  });
});
