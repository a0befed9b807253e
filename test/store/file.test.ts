import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileStore } from '../../src/store/file.js';
import { LockHeldError, StoreConflictError } from '../../src/store/errors.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-store-'));
  dirs.push(dir);
  return dir;
}

test('put and get round-trip JSON with increasing revisions; compare-and-set refuses a stale revision', async () => {
  const store = await FileStore.open(await freshDir());
  assert.equal(await store.put('state', { a: 1 }), 1);
  assert.equal(await store.put('state', { a: 2 }, { ifRevision: 1 }), 2);
  await assert.rejects(store.put('state', { a: 3 }, { ifRevision: 1 }), StoreConflictError);
  await assert.rejects(store.put('other', { a: 3 }, { ifRevision: 5 }), StoreConflictError);
  assert.deepEqual(await store.get('state'), { key: 'state', value: { a: 2 }, revision: 2 });
  await store.close();
});

test('list by prefix, delete, and watch see the changes', async () => {
  const store = await FileStore.open(await freshDir());
  const seen: [string, unknown][] = [];
  const stop = store.watch('release/', (key, value) => seen.push([key, value]));
  await store.put('release/1', { v: '1.0' });
  await store.put('release/2', { v: '2.0' });
  await store.put('state', {});
  assert.deepEqual(
    (await store.list('release/')).map((e) => e.key),
    ['release/1', 'release/2'],
  );
  await store.delete('release/1');
  stop();
  await store.put('release/3', {});
  assert.deepEqual(seen, [
    ['release/1', { v: '1.0' }],
    ['release/2', { v: '2.0' }],
    ['release/1', undefined],
  ]);
  await store.close();
});

test('published keys disappear after their time to live', async () => {
  const store = await FileStore.open(await freshDir());
  // Long enough to be read back on a busy machine, short enough to watch it go.
  await store.publish('instances/a', { up: true }, 1);
  assert.ok(await store.get('instances/a'));
  const deadline = Date.now() + 10_000;
  while ((await store.get('instances/a')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await store.get('instances/a'), undefined);
  await store.close();
});

test('a lock is exclusive, names its holder, and is taken over when the holder process died', async () => {
  const dir = await freshDir();
  const store = await FileStore.open(dir);
  const lock = await store.lock('release', 'alice', 30);
  await assert.rejects(
    store.lock('release', 'bob', 30),
    (err: unknown) => err instanceof LockHeldError && /alice/.test(err.message),
  );
  await lock.release();
  await (await store.lock('release', 'bob', 30)).release();

  // A process that takes the lock and is killed with SIGKILL leaves a stale lock file behind.
  const moduleUrl = new URL('../../src/store/file.js', import.meta.url).href;
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    const { FileStore } = await import(${JSON.stringify(moduleUrl)});
    const s = await FileStore.open(${JSON.stringify(dir)});
    await s.lock('release', 'carol', 3600);
    process.stdout.write('locked\\n');
    setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  await assert.rejects(store.lock('release', 'dave', 30), /carol/);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const taken = await store.lock('release', 'dave', 30);
  assert.equal(taken.holder, 'dave');
  await store.close();
});

test('state written before kill -9 is intact afterwards', async () => {
  const dir = await freshDir();
  const moduleUrl = new URL('../../src/store/file.js', import.meta.url).href;
  // The child writes revisions as fast as it can and reports each acknowledged one; it is killed mid-stream.
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    const { FileStore } = await import(${JSON.stringify(moduleUrl)});
    const s = await FileStore.open(${JSON.stringify(dir)});
    for (let i = 1; ; i++) { await s.put('state', { i, pad: 'x'.repeat(10000) }); process.stdout.write(i + '\\n'); }`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let acknowledged = 0;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const numbers = chunk.toString().trim().split('\n').map(Number);
      acknowledged = Math.max(acknowledged, ...numbers);
      if (acknowledged >= 50) resolve();
    });
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const store = await FileStore.open(dir);
  const state = await store.get<{ i: number; pad: string }>('state');
  assert.ok(state, 'state survives');
  assert.ok(state.value.i >= acknowledged, `acknowledged write ${acknowledged} kept (found ${state.value.i})`);
  assert.equal(state.value.pad.length, 10000);
  assert.equal(state.revision, state.value.i);
});
