// A real etcd (Debian etcd-server) for tests: one node or a 3-member cluster on loopback, ports chosen at
// run time, own data directories, in the foreground as child processes of the test, stopped by PID.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findPeer, type Peer } from './peers.js';
import { freePort } from '../../src/ports.js';
import { messageOf } from '../../src/errors.js';

const READY_TIMEOUT_MS = 30_000;

/** The etcd binary, or the reason to skip etcd tests (a missing etcd fails under CI=true). */
export function etcdBinary(): Peer {
  return findPeer('etcd', 'etcd-server');
}

/** PEM files of a throw-away CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestCertificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Makes a CA, a server certificate (IP 127.0.0.1) and a client certificate with openssl, in dir. */
export async function makeTestCertificates(openssl: string, dir: string): Promise<TestCertificates> {
  const run = (...args: string[]) => promisify(execFile)(openssl, args, { cwd: dir });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run(
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=dayshift test CA',
  );
  for (const [name, usage] of [
    ['server', 'serverAuth'],
    ['client', 'clientAuth'],
  ] as const) {
    await writeFile(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    await run('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=dayshift-test-${name}`);
    await run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
  const at = (file: string) => join(dir, file);
  return {
    ca: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
  };
}

export interface EtcdStartOptions {
  /** Serve clients over https with these certificates and require client certificates. */
  tls?: TestCertificates;
}

/** kill() returns before every thread of the target has stopped: wait until /proc says they all have. */
async function waitStopped(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const tasks = await readdir(`/proc/${pid}/task`);
    const states = await Promise.all(
      tasks.map((task) => readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => ') T')),
    );
    // The state is the field after the command name, which is in parentheses and may hold spaces.
    if (states.every((stat) => /^[tT]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? ''))) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`process ${pid} did not stop within 5 s`);
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  child?: ChildProcess;
  exited?: Promise<void>;
}

export class EtcdCluster {
  private constructor(
    private readonly binary: string,
    readonly dir: string,
    private readonly members: Member[],
    private readonly token: string,
    private readonly tls?: TestCertificates,
  ) {}

  private get scheme(): string {
    return this.tls ? 'https' : 'http';
  }

  /** Starts `size` members (1 or 3) and waits until the cluster answers /health. */
  static async start(binary: string, size = 1, options: EtcdStartOptions = {}): Promise<EtcdCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-etcd-'));
    const members: Member[] = [];
    for (let i = 1; i <= size; i++) {
      members.push({
        name: `n${i}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dataDir: join(dir, `n${i}.data`),
      });
    }
    // A fresh token per run: members of an earlier run can never join this one.
    const cluster = new EtcdCluster(
      binary,
      dir,
      members,
      `dayshift-test-${randomBytes(6).toString('hex')}`,
      options.tls,
    );
    try {
      for (const member of members) cluster.spawnMember(member);
      await Promise.all(members.map((m) => cluster.waitHealthy(m)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Client URLs of every member, for the store's `endpoints`. */
  get endpoints(): string[] {
    return this.members.map((m) => `${this.scheme}://127.0.0.1:${m.clientPort}`);
  }

  get memberNames(): string[] {
    return this.members.map((m) => m.name);
  }

  pid(name: string): number | undefined {
    return this.member(name).child?.pid;
  }

  /** Sends a signal to one member and, unless it is SIGSTOP/SIGCONT, waits for the process to exit. */
  async signal(name: string, signal: NodeJS.Signals): Promise<void> {
    const member = this.member(name);
    const child = member.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (signal === 'SIGSTOP') return waitStopped(child.pid!);
    if (signal === 'SIGCONT') return;
    await member.exited;
    member.child = undefined;
  }

  /** Kills one member (SIGKILL: a crash) and waits for it to exit. */
  kill(name: string): Promise<void> {
    return this.signal(name, 'SIGKILL');
  }

  /** Starts a stopped member again on its data dir and ports, and waits until it answers /health. */
  async restart(name: string): Promise<void> {
    const member = this.member(name);
    if (member.child) throw new Error(`etcd member ${name} is still running`);
    this.spawnMember(member);
    await this.waitHealthy(member);
  }

  /** Stops every member (SIGKILL, SIGCONT first for stopped ones), waits for exit, removes the dir. */
  async stop(): Promise<void> {
    for (const member of this.members) member.child?.kill('SIGCONT');
    await Promise.all(this.members.map((m) => this.kill(m.name)));
    await rm(this.dir, { recursive: true, force: true });
  }

  private member(name: string): Member {
    const member = this.members.find((m) => m.name === name);
    if (!member) throw new Error(`no etcd member ${name}`);
    return member;
  }

  private spawnMember(member: Member): void {
    const client = `${this.scheme}://127.0.0.1:${member.clientPort}`;
    const peer = `http://127.0.0.1:${member.peerPort}`;
    const initialCluster = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const child = spawn(
      this.binary,
      [
        '--name',
        member.name,
        '--data-dir',
        member.dataDir,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        this.token,
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-outputs',
        join(this.dir, `${member.name}.log`),
        '--log-level',
        'warn',
        ...(this.tls
          ? [
              '--cert-file',
              this.tls.serverCert,
              '--key-file',
              this.tls.serverKey,
              '--trusted-ca-file',
              this.tls.ca,
              '--client-cert-auth',
            ]
          : []),
      ],
      { stdio: 'ignore' },
    );
    member.child = child;
    member.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  private async waitHealthy(member: Member): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      const child = member.child;
      if (!child || child.exitCode !== null)
        throw new Error(
          `etcd member ${member.name} exited during start-up (log: ${join(this.dir, `${member.name}.log`)})`,
        );
      try {
        const body = JSON.parse(await this.getHealth(member.clientPort)) as { health?: string };
        if (body.health === 'true') return;
        last = JSON.stringify(body);
      } catch (err) {
        last = messageOf(err);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`etcd member ${member.name} not healthy after ${READY_TIMEOUT_MS} ms: ${last}`);
  }

  private async getHealth(port: number): Promise<string> {
    if (!this.tls) {
      const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
      return response.text();
    }
    const [ca, cert, key] = await Promise.all(
      [this.tls.ca, this.tls.clientCert, this.tls.clientKey].map((f) => readFile(f)),
    );
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/health', ca, cert, key, timeout: 2000 }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }
}
