// EtcdStore against a real etcd (Debian etcd-server): the Store contract on one node, what survives a
// process killed with SIGKILL, etcd going away and coming back, migration from the file store, and a
// 3-member cluster losing its leader.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { instanceTotals, publishInstance } from '../../src/observe/instances.js';
import { EtcdStore, type EtcdStoreOptions } from '../../src/store/etcd.js';
import { FileStore } from '../../src/store/file.js';
import { migrateStore } from '../../src/store/migrate.js';
import { MigrationConflictError } from '../../src/store/errors.js';
import { fileStoreDir } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { LockHeldError, StoreUnavailableError } from '../../src/store/errors.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { eventually, storeContract } from './store-contract.js';
import { freePort } from '../../src/ports.js';

const etcd = etcdBinary();
const childScript = fileURLToPath(new URL('../support/etcd-child.js', import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const unique = (what: string) => `/dayshift/${what}-${randomBytes(4).toString('hex')}/`;

/** Stores opened by a test, closed in after() even when the test failed half-way. */
class Opened {
  private readonly stores: Store[] = [];
  async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const store = await EtcdStore.open(options);
    this.stores.push(store);
    return store;
  }
  closeAll(): Promise<void> {
    return Promise.all(this.stores.splice(0).map((s) => s.close())).then(() => undefined);
  }
}

/** Starts test/support/etcd-child.ts and waits until it has published its figures and taken its lock. */
async function startChild(args: {
  endpoints: string[];
  prefix: string;
  instanceId: string;
  lockName: string;
  ttlSeconds: number;
}): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const child = spawn(process.execPath, [childScript, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child not ready after 15 s: ${stderr}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code}: ${stderr}`)));
  });
  return { child, exited };
}

/** Runs the dayshift CLI; resolves with its exit code and output. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function rejectsUnavailable(what: string, call: () => Promise<unknown>, endpoint: string): Promise<number> {
  const started = performance.now();
  await assert.rejects(call(), (err: unknown) => {
    assert.ok(err instanceof StoreUnavailableError, `${what}: expected StoreUnavailableError, got ${String(err)}`);
    assert.ok(err.message.includes(endpoint), `${what}: the message names the endpoint: ${err.message}`);
    return true;
  });
  return performance.now() - started;
}

test('bad client settings fail as StoreUnavailableError before any connection', async () => {
  await assert.rejects(
    EtcdStore.open({ endpoints: ['http://127.0.0.1:1', 'https://127.0.0.1:2'], prefix: '/x/' }),
    (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.match(err.message, /mix of secure and insecure hosts/);
      return true;
    },
  );
  await assert.rejects(EtcdStore.open({ endpoints: [], prefix: '/x/' }), /no endpoints configured/);
});

describe('etcd store, single node', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  const opened = new Opened();
  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
  });
  after(async () => {
    await opened.closeAll();
    await cluster?.stop();
  });

  storeContract('etcd', async () => {
    const prefix = unique('contract');
    return { open: () => opened.open({ endpoints: cluster.endpoints, prefix }), multiClient: true };
  });

  test('open() with nothing listening fails with StoreUnavailableError naming the endpoint', async (t) => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const elapsed = await rejectsUnavailable(
      'open',
      () => EtcdStore.open({ endpoints: [endpoint], prefix: '/x/', dialTimeoutMs: 1000 }),
      endpoint,
    );
    t.diagnostic(`open() against a closed port failed after ${elapsed.toFixed(0)} ms (dial timeout 1000 ms)`);
  });

  test('an instance killed with SIGKILL drops out of the totals and its lock frees when its lease runs out', async (t) => {
    const prefix = unique('kill');
    const ttlSeconds = 2;
    const { child, exited } = await startChild({
      endpoints: cluster.endpoints,
      prefix,
      instanceId: 'proxy-b',
      lockName: 'release',
      ttlSeconds,
    });
    try {
      const store = await opened.open({ endpoints: cluster.endpoints, prefix });
      const totals = await instanceTotals(store);
      assert.deepEqual(
        totals.instances.map((i) => i.id),
        ['proxy-b'],
      );
      assert.deepEqual(totals.members['blue/a1'], {
        inFlight: 2,
        sessions: 5,
        tunnels: 1,
        health: 'up',
        healthBy: { 'proxy-b': 'up' },
      });
      await assert.rejects(store.lock('release', 'proxy-a', ttlSeconds), (err: unknown) => {
        assert.ok(err instanceof LockHeldError);
        assert.equal(err.holder, `proxy-b (pid ${child.pid} on ${err.holder.split(' on ')[1]}`);
        return true;
      });
      // An observation window, not synchronisation: twice the TTL passes and the keep-alives hold the keys.
      await delay(2 * ttlSeconds * 1000 + 200);
      assert.equal((await instanceTotals(store)).instances.length, 1, 'a live instance stays published past its TTL');
      await assert.rejects(store.lock('release', 'proxy-a', ttlSeconds), LockHeldError);

      const killedAt = performance.now();
      child.kill('SIGKILL');
      await exited;
      await eventually('instance dropped out', async () => (await instanceTotals(store)).instances.length === 0);
      const droppedAfter = performance.now() - killedAt;
      let lock;
      await eventually('lock free', async () => {
        try {
          lock = await store.lock('release', 'proxy-a', ttlSeconds);
          return true;
        } catch (err) {
          if (err instanceof LockHeldError) return false;
          throw err;
        }
      });
      const freedAfter = performance.now() - killedAt;
      t.diagnostic(
        `after SIGKILL of the holder (lease TTL ${ttlSeconds} s): figures gone after ${droppedAfter.toFixed(0)} ms, lock free after ${freedAfter.toFixed(0)} ms`,
      );
      assert.equal(await store.get('instances/proxy-b'), undefined);
      await lock!.release();
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  test('held() tells a lock holder whether etcd still has its lock', async () => {
    const prefix = unique('held');
    const store = await opened.open({ endpoints: cluster.endpoints, prefix });
    const lock = await store.lock('release', 'proxy-a', 30);
    assert.equal(await lock.held!(), true);
    // What a lease expiring during an etcd outage leaves behind: the lock key is gone.
    const raw = new Etcd3({ hosts: cluster.endpoints });
    try {
      await raw.delete().key(`${prefix}locks/release`);
    } finally {
      raw.close();
    }
    assert.equal(await lock.held!(), false);
    const other = await store.lock('release', 'proxy-b', 30);
    assert.equal(await lock.held!(), false, 'another holder now has it');
    assert.equal(await other.held!(), true);
    await other.release();
    assert.equal(await other.held!(), false);
    await lock.release();
  });

  test('migrate copies every key from the file store to etcd, skips live figures, never overwrites', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-migrate-'));
    const file = await FileStore.open(dir);
    try {
      await file.put('state', { clusters: { blue: { traffic: 'live' } } });
      await file.put('journal/0001', { step: 'drain blue' });
      await file.publish('instances/old-proxy', { members: {} }, 60);
      const etcdStore = await opened.open({ endpoints: cluster.endpoints, prefix: unique('migrate') });

      const dry = await migrateStore(file, etcdStore, { dryRun: true });
      assert.deepEqual(dry.copied, ['journal/0001', 'state']);
      assert.deepEqual(await etcdStore.list(''), [], 'a dry run writes nothing');

      const result = await migrateStore(file, etcdStore);
      assert.deepEqual(
        [result.copied, result.unchanged, result.skipped],
        [['journal/0001', 'state'], [], ['instances/old-proxy']],
      );
      assert.deepEqual(
        (await etcdStore.list('')).map((v) => [v.key, v.value]),
        [
          ['journal/0001', { step: 'drain blue' }],
          ['state', { clusters: { blue: { traffic: 'live' } } }],
        ],
      );
      const again = await migrateStore(file, etcdStore);
      assert.deepEqual([again.copied, again.unchanged], [[], ['journal/0001', 'state']]);

      await etcdStore.put('state', { clusters: { blue: { traffic: 'out' } } });
      await file.put('journal/0002', { step: 'new' });
      await assert.rejects(
        migrateStore(file, etcdStore),
        (err: unknown) => err instanceof MigrationConflictError && err.keys.join() === 'state',
      );
      assert.equal(
        await etcdStore.get('journal/0002'),
        undefined,
        'a conflict stops the migration before anything is written',
      );
    } finally {
      await file.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('dayshift store migrate --from file --to etcd: copies, is idempotent, refuses conflicts with exit 3', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-migrate-cli-'));
    const prefix = unique('cli');
    try {
      const configFile = join(dir, 'dayshift.yaml');
      await writeFile(
        configFile,
        [
          'listen: {http: "127.0.0.1:18080"}',
          'state_dir: state',
          `store: {type: etcd, endpoints: [${cluster.endpoints.join(', ')}], prefix: ${prefix}, request_timeout: 1s}`,
          'clusters:',
          '  blue: {members: [{url: "http://127.0.0.1:9"}]}',
          'sites:',
          '  www: {hosts: [www.example], routes: [{clusters: [blue]}]}',
          '',
        ].join('\n'),
      );
      const fileDir = fileStoreDir({ state_dir: 'state' }, dir);
      await mkdir(fileDir, { recursive: true });
      const file = await FileStore.open(fileDir);
      await file.put('state', { clusters: {} });
      await file.close();

      const dry = await runCli(['store', 'migrate', '-c', configFile, '--from', 'file', '--to', 'etcd', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would copy 1 key/);
      const first = await runCli(['store', 'migrate', '-c', configFile, '--from', 'file', '--to', 'etcd', '--json']);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual((JSON.parse(first.stdout) as { copied: string[] }).copied, ['state']);
      const second = await runCli(['store', 'migrate', '-c', configFile, '--from', 'file', '--to', 'etcd']);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /copied 0 key\(s\); 1 already there/);

      const store = await opened.open({ endpoints: cluster.endpoints, prefix });
      await store.put('state', { clusters: { changed: true } });
      const conflict = await runCli(['store', 'migrate', '-c', configFile, '--from', 'file', '--to', 'etcd']);
      assert.equal(conflict.code, 3);
      assert.match(conflict.stderr, /already holds 1 key\(s\) with other values: state; nothing was copied/);

      const same = await runCli(['store', 'migrate', '-c', configFile, '--from', 'etcd', '--to', 'etcd']);
      assert.equal(same.code, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('etcd not answering (SIGSTOP): calls fail with StoreUnavailableError at their deadline instead of hanging', async (t) => {
    const [endpoint] = cluster.endpoints;
    const store = await opened.open({ endpoints: cluster.endpoints, prefix: unique('stopped'), requestTimeoutMs: 500 });
    await store.put('before', 1);
    await cluster.signal('n1', 'SIGSTOP');
    try {
      const get = await rejectsUnavailable('get', () => store.get('before'), endpoint!);
      const put = await rejectsUnavailable('put', () => store.put('during', 1), endpoint!);
      t.diagnostic(
        `with etcd stopped, get failed after ${get.toFixed(0)} ms and put after ${put.toFixed(0)} ms (request timeout 500 ms)`,
      );
    } finally {
      await cluster.signal('n1', 'SIGCONT');
    }
    await eventually('etcd answers again', async () => (await store.get('before').catch(() => undefined))?.value === 1);
  });

  test('etcd down: every call fails fast naming the endpoint; the watch resynchronises when etcd returns', async (t) => {
    const [endpoint] = cluster.endpoints;
    const prefix = unique('down');
    const watching = await opened.open({ endpoints: cluster.endpoints, prefix, requestTimeoutMs: 1000 });
    const writer = await opened.open({ endpoints: cluster.endpoints, prefix, requestTimeoutMs: 1000 });
    const seen: string[] = [];
    let resyncs = 0;
    let resyncedAt = 0;
    watching.watch(
      'state/',
      (key) => seen.push(key),
      () => {
        resyncs++;
        resyncedAt = performance.now();
      },
    );
    await eventually('watch registered', async () => {
      await writer.put('state/probe', 1);
      return seen.includes('state/probe');
    });

    await cluster.kill('n1');
    const elapsed = [
      await rejectsUnavailable('get', () => watching.get('state/probe'), endpoint!),
      await rejectsUnavailable('put', () => watching.put('state/x', 1), endpoint!),
      await rejectsUnavailable('compare-and-set', () => watching.put('state/x', 1, { ifRevision: 0 }), endpoint!),
      await rejectsUnavailable('delete', () => watching.delete('state/x'), endpoint!),
      await rejectsUnavailable('list', () => watching.list('state/'), endpoint!),
      await rejectsUnavailable('publish', () => watching.publish('instances/a', {}, 5), endpoint!),
      await rejectsUnavailable('lock', () => watching.lock('release', 'a', 5), endpoint!),
    ];
    t.diagnostic(
      `with etcd down, calls failed after ${elapsed.map((ms) => ms.toFixed(0)).join(', ')} ms (get, put, cas, delete, list, publish, lock)`,
    );

    const restartedAt = performance.now();
    await cluster.restart('n1');
    const healthyAfter = performance.now() - restartedAt;
    await eventually('watch resynchronised', () => resyncs > 0);
    await eventually('writes accepted again', async () => (await writer.put('state/after', 2).catch(() => 0)) > 0);
    await eventually('watch delivers again', () => seen.includes('state/after'));
    t.diagnostic(
      `etcd restarted: healthy after ${healthyAfter.toFixed(0)} ms, watch resynchronised ${(resyncedAt - restartedAt).toFixed(0)} ms after the restart began`,
    );
    assert.deepEqual(
      (await watching.list('state/')).map((v) => v.key),
      ['state/after', 'state/probe'],
    );
  });
});

describe('etcd store, 3-member cluster', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  const opened = new Opened();
  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 3);
  });
  after(async () => {
    await opened.closeAll();
    await cluster?.stop();
  });

  test("propagation: changes written by one instance reach another instance's watch", async (t) => {
    const prefix = unique('propagation');
    const writer = await opened.open({ endpoints: cluster.endpoints, prefix });
    const reader = await opened.open({ endpoints: cluster.endpoints, prefix });
    const arrived = new Map<string, number>();
    reader.watch('state/', (key) => arrived.set(key, performance.now()));
    await eventually('watch registered', async () => {
      await writer.put('state/probe', 1);
      return arrived.has('state/probe');
    });
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) {
      const key = `state/n${i}`;
      const started = performance.now();
      await writer.put(key, { i });
      await eventually(`change ${i} seen`, () => arrived.has(key));
      samples.push(arrived.get(key)! - started);
    }
    samples.sort((a, b) => a - b);
    const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!.toFixed(1);
    t.diagnostic(
      `put → other instance's watch over 3 members, 50 changes: median ${pct(0.5)} ms, p90 ${pct(0.9)} ms, max ${pct(1)} ms`,
    );
    assert.equal(samples.length, 50);
  });

  test('a watcher cut off with its member gets the changes it missed, and a resync, when the member returns', async (t) => {
    const prefix = unique('missed');
    const [first, ...others] = cluster.endpoints;
    const watching = await opened.open({ endpoints: [first!], prefix });
    const writer = await opened.open({ endpoints: others, prefix });
    const seen: string[] = [];
    let resyncs = 0;
    watching.watch(
      'state/',
      (key) => seen.push(key),
      () => resyncs++,
    );
    await eventually('watch registered', async () => {
      await writer.put('state/probe', 1);
      return seen.includes('state/probe');
    });
    const name = cluster.memberNames[0]!;
    await cluster.kill(name);
    for (let i = 0; i < 5; i++) await writer.put(`state/missed${i}`, i);
    const restartedAt = performance.now();
    await cluster.restart(name);
    await eventually('missed changes delivered', () =>
      [...Array(5).keys()].every((i) => seen.includes(`state/missed${i}`)),
    );
    t.diagnostic(
      `the 5 changes made while the watcher's member was down arrived ${(performance.now() - restartedAt).toFixed(0)} ms after its restart began`,
    );
    await eventually('resync called', () => resyncs > 0);
  });

  test('a watcher whose missed history was compacted away starts over and resyncs', async () => {
    const prefix = unique('compacted');
    const [first, ...others] = cluster.endpoints;
    const watching = await opened.open({ endpoints: [first!], prefix });
    const writer = await opened.open({ endpoints: others, prefix });
    const seen: string[] = [];
    let resyncs = 0;
    watching.watch(
      'state/',
      (key) => seen.push(key),
      () => resyncs++,
    );
    await eventually('watch registered', async () => {
      await writer.put('state/probe', 1);
      return seen.includes('state/probe');
    });
    const name = cluster.memberNames[0]!;
    await cluster.kill(name);
    await writer.put('state/missed', 1);
    // Compacting at a later revision than the watcher's next one leaves it nothing to resume from.
    const revision = await writer.put('state/missed', 2);
    const raw = new Etcd3({ hosts: others });
    try {
      await raw.kv.compact({ revision: String(revision), physical: true });
    } finally {
      raw.close();
    }
    await cluster.restart(name);
    await eventually('resync called', () => resyncs > 0);
    // The caller reloads after a resync; the change it could not be told about is there.
    assert.deepEqual(
      (await watching.list('state/')).map((v) => v.key),
      ['state/missed', 'state/probe'],
    );
    await eventually('the new watch delivers', async () => {
      await writer.put('state/later', Date.now());
      return seen.includes('state/later');
    });
  });

  test('with the leader killed (SIGKILL), reads, writes, CAS, watch, publish and lock keep working; it catches up on restart', async (t) => {
    const prefix = unique('ha');
    const a = await opened.open({ endpoints: cluster.endpoints, prefix });
    const b = await opened.open({ endpoints: cluster.endpoints, prefix });
    const seen = new Set<string>();
    b.watch('state/', (key) => seen.add(key));
    await eventually('watch registered', async () => {
      await a.put('state/probe', 1);
      return seen.has('state/probe');
    });
    const ttlSeconds = 2;
    await publishInstance(
      a,
      { id: 'proxy-a', host: 'h', pid: 1, version: 'v', at: new Date().toISOString(), members: {} },
      ttlSeconds,
    );
    const lock = await a.lock('release', 'proxy-a', ttlSeconds);

    const leader = await leaderOf(cluster);
    const killedAt = performance.now();
    await cluster.kill(leader);
    const firstWrite = performance.now();
    await a.put('state/first-after-kill', 1);
    t.diagnostic(
      `killed leader ${leader}; the first write after it took ${(performance.now() - firstWrite).toFixed(0)} ms`,
    );

    for (let i = 0; i < 20; i++) await a.put(`state/k${i}`, i);
    const revision = (await b.get('state/k0'))!.revision;
    await b.put('state/k0', 'cas', { ifRevision: revision });
    assert.equal((await a.list('state/k')).length, 20);
    await eventually('watch saw every write', () => [...Array(20).keys()].every((i) => seen.has(`state/k${i}`)));
    await assert.rejects(
      b.lock('release', 'proxy-b', ttlSeconds),
      (err: unknown) => err instanceof LockHeldError && /proxy-a/.test(err.holder),
    );
    const other = await b.lock('other', 'proxy-b', ttlSeconds);
    await other.release();
    // An observation window: twice the lease TTL with one member down, and the keep-alives still hold.
    await delay(Math.max(0, killedAt + 2 * ttlSeconds * 1000 + 200 - performance.now()));
    assert.ok(await b.get('instances/proxy-a'), 'published figures survive a member loss');
    await assert.rejects(b.lock('release', 'proxy-b', ttlSeconds), LockHeldError);

    await cluster.restart(leader);
    const endpoint = cluster.endpoints[cluster.memberNames.indexOf(leader)]!;
    const onlyRestarted = await opened.open({ endpoints: [endpoint], prefix });
    await eventually('restarted member caught up', async () => (await onlyRestarted.get('state/k19'))?.value === 19);
    await lock.release();
  });
});

/** Name of the member that is the raft leader, from the v3 HTTP gateway's maintenance status. */
async function leaderOf(cluster: EtcdCluster): Promise<string> {
  for (const [i, endpoint] of cluster.endpoints.entries()) {
    const response = await fetch(`${endpoint}/v3/maintenance/status`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(2000),
    });
    const status = (await response.json()) as { header: { member_id: string }; leader: string };
    if (status.header.member_id === status.leader) return cluster.memberNames[i]!;
  }
  throw new Error('no member says it is the leader');
}
