// Several Dayshift instances sharing one real etcd: one conductor runs a release, the others follow its
// journal, refuse a second release naming the holder, and do not mistake it for an interrupted one.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoApps, type DemoApps } from '../../src/demo/environment.js';
import type { Release } from '../../src/release/types.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { until } from './harness.js';

const etcd = etcdBinary();

describe('a release with several instances through etcd', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let apps: DemoApps;
  const instances: TestDayshift[] = [];

  before(async () => {
    cluster = await EtcdCluster.start(etcd.binary!, 1);
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

  test('one instance runs it; the others follow, refuse a second release and leave it running', async () => {
    const members = (name: string) => apps.apps.filter((a) => a.options.cluster === name).map((a) => ({ url: a.url, route: a.options.member }));
    const config = (dir: string) => ({
      store: { type: 'etcd', endpoints: cluster.endpoints, prefix: `/dayshift/release-${process.pid}/`, lease_ttl: '2s' },
      health: { path: '/health', interval: '250ms', rise: 1, fall: 1 },
      drain: { session_idle: '500ms' },
      clusters: { 'prod-a': { members: members('prod-a') }, 'prod-b': { members: members('prod-b') } },
      sites: { public: { hosts: ['localhost'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'], sticky: { mode: 'route', cookie: 'JSESSIONID' } }] } },
      release: {
        // The deploy of prod-a waits for the test to open the gate.
        hooks: { deploy: { run: `while [ ! -e '${join(dir, 'gate')}' ]; do sleep 0.05; done` } },
        health: { timeout: '20s', stable: '300ms' },
        approval: 'auto',
      },
    });
    const a = await startWithDir(config);
    instances.push(a);
    const gate = join(a.dir, 'gate');
    const b = await startWithDir(() => config(a.dir));
    instances.push(b);

    const started = await a.api<Release>('POST', '/api/release/start', { version: '2.0' });
    assert.equal(started.status, 200);
    await until('the deploy to run on instance a', async () => ((await a.api<Release>('GET', '/api/release')).body.steps.find((s) => s.id === 'prod-a:deploy')?.state === 'running' ? true : undefined));
    const followed = await until('instance b to follow', async () => {
      const r = await b.api<Release>('GET', '/api/release');
      return r.status === 200 && r.body.id === started.body.id && r.body.steps[r.body.current]?.id === 'prod-a:deploy' ? r.body : undefined;
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
    const done = await until('the release to succeed, seen from c', async () => {
      const r = (await c.api<Release>('GET', '/api/release')).body;
      return r.state === 'succeeded' || r.state === 'failed' ? r : undefined;
    }, 60_000);
    assert.equal(done.state, 'succeeded', done.reason);
    assert.ok(existsSync(gate));
  });
});

/** Starts an instance whose config may refer to its own directory. */
async function startWithDir(config: (dir: string) => Record<string, unknown>): Promise<TestDayshift> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-instance-'));
  return startTestDayshift(config(dir), dir);
}
