// Several Dayshift instances sharing one real etcd: one conductor runs a release, the others follow its
// journal, refuse a second release naming the holder, and do not mistake it for an interrupted one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoApps, type DemoApps } from '../../src/demo/environment.js';
import type { Release } from '../../src/release/types.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { stringify } from 'yaml';
import { baseConfig } from '../support/dayshift.js';
import { MAIN, until } from './harness.js';
import { freePort } from '../../src/ports.js';

const etcd = etcdBinary();

describe('a release with several instances through etcd', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let apps: DemoApps;
  const instances: TestDayshift[] = [];

  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
    apps = await startDemoApps('1.0');
  });
  after(async () => {
    for (const instance of instances) {
      await instance.stop();
      await rm(instance.dir, { recursive: true, force: true });
    }
    await apps?.close();
    await cluster?.stop();
  });

  const members = (name: string) =>
    apps.apps.filter((a) => a.options.cluster === name).map((a) => ({ url: a.url, route: a.options.member }));
  /** Every instance's config; the deploy of prod-a waits until `gate` exists. */
  const sharedConfig = (prefix: string, gate: string) => ({
    store: { type: 'etcd', endpoints: cluster.endpoints, prefix, lease_ttl: '2s' },
    health: { path: '/health', interval: '250ms', rise: 1, fall: 1 },
    drain: { session_idle: '500ms' },
    clusters: { 'prod-a': { members: members('prod-a') }, 'prod-b': { members: members('prod-b') } },
    sites: {
      public: {
        hosts: ['localhost'],
        routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'route', cookie: 'JSESSIONID' } }],
      },
    },
    release: {
      hooks: { deploy: { run: `while [ ! -e '${gate}' ]; do sleep 0.05; done` } },
      health: { timeout: '20s', stable: '300ms' },
      approval: 'auto',
    },
  });

  test('one instance runs it; the others follow, refuse a second release and leave it running', async () => {
    const config = (dir: string) => sharedConfig(`/dayshift/release-${process.pid}/`, join(dir, 'gate'));
    const a = await startWithDir(config);
    instances.push(a);
    const gate = join(a.dir, 'gate');
    const b = await startWithDir(() => config(a.dir));
    instances.push(b);

    const started = await a.api<Release>('POST', '/api/release/start', { version: '2.0' });
    assert.equal(started.status, 200);
    await until('the deploy to run on instance a', async () =>
      (await a.api<Release>('GET', '/api/release')).body.steps.find((s) => s.id === 'prod-a:deploy')?.state ===
      'running'
        ? true
        : undefined,
    );
    const followed = await until('instance b to follow', async () => {
      const r = await b.api<Release>('GET', '/api/release');
      return r.status === 200 && r.body.id === started.body.id && r.body.steps[r.body.current]?.id === 'prod-a:deploy'
        ? r.body
        : undefined;
    });
    assert.equal(followed.state, 'running');

    const second = await b.api<{ error: string }>('POST', '/api/release/start', { version: '3.0' });
    assert.equal(second.status, 409);
    assert.match(second.body.error, new RegExp(`release ${started.body.id} \\(version 2\\.0, started by token:admin`));

    // An instance starting now finds the release running elsewhere: it must not call it interrupted.
    const c = await startWithDir(() => config(a.dir));
    instances.push(c);
    assert.equal((await c.api<Release>('GET', '/api/release')).body.state, 'running');
    assert.equal((await a.api<Release>('GET', '/api/release')).body.state, 'running');

    await writeFile(gate, 'open');
    const done = await until(
      'the release to succeed, seen from c',
      async () => {
        const r = (await c.api<Release>('GET', '/api/release')).body;
        return r.state === 'succeeded' || r.state === 'failed' ? r : undefined;
      },
      60_000,
    );
    assert.equal(done.state, 'succeeded', done.reason);
    assert.ok(existsSync(gate));
  });

  test('an instance killed mid-release: its lock lapses and release resume on another instance carries the release on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-instance-'));
    const gate = join(dir, 'gate');
    const prefix = `/dayshift/resume-${process.pid}/`;
    // Instance a is a real process, so that it can die by SIGKILL with its etcd lease still held.
    const adminPort = await freePort();
    const file = join(dir, 'dayshift.yaml');
    await writeFile(
      file,
      stringify({
        ...baseConfig(dir, sharedConfig(prefix, gate)),
        admin: { listen: `127.0.0.1:${adminPort}`, token_file: 'token' },
      }),
    );
    await writeFile(join(dir, 'token'), 'resume-test-token-0123456789\n');
    const child = spawn(process.execPath, [MAIN, 'start', '-c', file], { stdio: 'ignore' });
    const adminA = `http://127.0.0.1:${adminPort}`;
    const callA = (method: string, path: string, body?: unknown) =>
      fetch(`${adminA}${path}`, {
        method,
        headers: { authorization: 'Bearer resume-test-token-0123456789', 'content-type': 'application/json' },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    try {
      await until(
        'instance a to answer',
        async () => ((await callA('GET', '/healthz').catch(() => undefined))?.ok ? true : undefined),
        20_000,
      );
      const b = await startWithDir(() => sharedConfig(prefix, gate));
      instances.push(b);
      const started = (await (await callA('POST', '/api/release/start', { version: '2.0' })).json()) as Release;
      await until('the deploy to run on instance a', async () => {
        const r = (await b.api<Release>('GET', '/api/release')).body;
        return r.id === started.id && r.steps[r.current]?.id === 'prod-a:deploy' ? true : undefined;
      });
      const refused = await b.api<{ error: string }>('POST', '/api/release/resume', { yes: true });
      assert.equal(refused.status, 409, 'refused while instance a holds the lock');
      assert.match(refused.body.error, /held by/);

      child.kill('SIGKILL');
      await once(child, 'exit');
      // Once a's lease expires (lease_ttl 2s) the lock lapses and b takes the release over.
      await until(
        'instance b to take the release over',
        async () => ((await b.api('POST', '/api/release/resume', { yes: true })).status === 200 ? true : undefined),
        20_000,
      );
      await writeFile(gate, 'open');
      const done = await until(
        'the release to end on instance b',
        async () => {
          const r = (await b.api<Release>('GET', '/api/release')).body;
          return r.state === 'succeeded' || r.state === 'failed' ? r : undefined;
        },
        60_000,
      );
      assert.equal(done.state, 'succeeded', done.reason);
      assert.equal(done.id, started.id);
      const history = (await b.api<Release[]>('GET', '/api/releases')).body;
      assert.equal(history.filter((r) => r.id === started.id).length, 1);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await writeFile(gate, 'open');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Starts an instance whose config may refer to its own directory. */
async function startWithDir(config: (dir: string) => Record<string, unknown>): Promise<TestDayshift> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-instance-'));
  return startTestDayshift(config(dir), dir);
}
