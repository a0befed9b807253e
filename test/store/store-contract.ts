// The behaviour every Store must have, whatever keeps the data: run it against the file store and etcd.
// Call storeContract() inside a test file; each test works under its own random key prefix.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { LockHeldError, StoreConflictError } from '../../src/store/errors.js';

export interface StoreUnderTest {
  /** Opens another client of the same shared store (another instance, as far as the store can tell). */
  open(): Promise<Store>;
  /**
   * Whether several clients may share the store at once: watch() sees other clients' changes and
   * compare-and-set is atomic between clients (etcd). The file store serves one process, so it only
   * promises both within one client.
   */
  multiClient: boolean;
}

const DEADLINE_MS = 15_000;

/** Polls until check() returns true, or fails at the deadline. */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  deadlineMs = DEADLINE_MS,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`${what}: not true after ${deadlineMs} ms`);
}

export function storeContract(name: string, setup: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let sut: StoreUnderTest;
    let a: Store;
    let b: Store;
    let ns: string;

    before(async () => {
      sut = await setup();
      a = await sut.open();
      b = await sut.open();
    });
    after(async () => {
      await a?.close();
      await b?.close();
    });
    const fresh = () => (ns = `contract-${randomBytes(4).toString('hex')}`);

    test('put then get returns the value and the revision put returned; a missing key is undefined', async () => {
      fresh();
      const revision = await a.put(`${ns}/doc`, { state: 'live', n: [1, 2] });
      assert.ok(revision > 0);
      assert.deepEqual(await b.get(`${ns}/doc`), { key: `${ns}/doc`, value: { state: 'live', n: [1, 2] }, revision });
      assert.equal(await b.get(`${ns}/missing`), undefined);
      const next = await a.put(`${ns}/doc`, { state: 'out' });
      assert.ok(next > revision, 'a later write has a higher revision');
    });

    test('compare-and-set: ifRevision 0 creates once; a stale revision is refused naming both revisions', async () => {
      fresh();
      const key = `${ns}/cas`;
      const created = await a.put(key, 1, { ifRevision: 0 });
      await assert.rejects(b.put(key, 2, { ifRevision: 0 }), (err: unknown) => {
        assert.ok(err instanceof StoreConflictError);
        assert.equal(err.key, key);
        assert.equal(err.expected, 0);
        assert.equal(err.actual, created);
        return true;
      });
      const second = await b.put(key, 2, { ifRevision: created });
      await assert.rejects(a.put(key, 3, { ifRevision: created }), (err: unknown) => {
        assert.ok(err instanceof StoreConflictError);
        assert.equal(err.expected, created);
        assert.equal(err.actual, second);
        return true;
      });
      assert.equal((await a.get(key))?.value, 2);
      await assert.rejects(
        a.put(`${ns}/absent`, 1, { ifRevision: 5 }),
        (err: unknown) => err instanceof StoreConflictError && err.actual === 0,
      );
    });

    test('two writers racing with compare-and-set: exactly one wins', async () => {
      fresh();
      const key = `${ns}/race`;
      const start = await a.put(key, 0);
      const other = sut.multiClient ? b : a;
      const results = await Promise.allSettled([
        a.put(key, 'a', { ifRevision: start }),
        other.put(key, 'b', { ifRevision: start }),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const loser = results.find((r) => r.status === 'rejected');
      assert.ok(loser && loser.status === 'rejected' && loser.reason instanceof StoreConflictError);
    });

    test('delete removes the key; it can then be created again with ifRevision 0', async () => {
      fresh();
      await a.put(`${ns}/gone`, 'x');
      await b.delete(`${ns}/gone`);
      assert.equal(await a.get(`${ns}/gone`), undefined);
      await a.put(`${ns}/gone`, 'y', { ifRevision: 0 });
      await a.delete(`${ns}/never-was`);
    });

    test('list returns every key under the prefix, sorted, with values and revisions', async () => {
      fresh();
      const r2 = await a.put(`${ns}/list/b`, 2);
      const r1 = await a.put(`${ns}/list/a`, 1);
      const r3 = await a.put(`${ns}/list/c/deep`, 3);
      await a.put(`${ns}/other`, 4);
      assert.deepEqual(await b.list(`${ns}/list/`), [
        { key: `${ns}/list/a`, value: 1, revision: r1 },
        { key: `${ns}/list/b`, value: 2, revision: r2 },
        { key: `${ns}/list/c/deep`, value: 3, revision: r3 },
      ]);
      assert.deepEqual(await b.list(`${ns}/nothing/`), []);
    });

    test('watch delivers puts and deletes under its prefix only, and nothing after unsubscribe', async (t) => {
      fresh();
      const watcher = sut.multiClient ? b : a;
      const seen: { key: string; value: unknown; at: number }[] = [];
      const stop = watcher.watch(`${ns}/w/`, (key, value) => seen.push({ key, value, at: performance.now() }));
      // A watch may take a moment to be registered: write a probe until the watcher sees one.
      await eventually('watch registered', async () => {
        await a.put(`${ns}/w/probe`, Date.now());
        return seen.some((c) => c.key === `${ns}/w/probe`);
      });
      const started = performance.now();
      await a.put(`${ns}/w/x`, { v: 1 });
      await a.put(`${ns}/other`, 'not watched');
      await a.delete(`${ns}/w/x`);
      await eventually('delete seen', () => seen.some((c) => c.key === `${ns}/w/x` && c.value === undefined));
      const changes = seen.filter((c) => !c.key.endsWith('/probe'));
      t.diagnostic(
        `${name}: a change made by ${sut.multiClient ? 'another client' : 'this client'} reached the watcher in ${(changes[0]!.at - started).toFixed(1)} ms`,
      );
      assert.deepEqual(
        changes.map((c) => [c.key, c.value]),
        [
          [`${ns}/w/x`, { v: 1 }],
          [`${ns}/w/x`, undefined],
        ],
      );
      stop();
      const count = seen.length;
      const other: string[] = [];
      const stopOther = watcher.watch(`${ns}/w/`, (key) => other.push(key));
      await eventually('a second watcher sees a later write', async () => {
        await a.put(`${ns}/w/after`, 1);
        return other.length > 0;
      });
      stopOther();
      assert.equal(seen.length, count, 'an unsubscribed watcher gets nothing');
    });

    test('a published value is readable by other clients and disappears once its publisher is gone', async () => {
      fresh();
      const publisher = await sut.open();
      await publisher.publish(`${ns}/instances/one`, { inFlight: 3 }, 1);
      assert.deepEqual((await b.get(`${ns}/instances/one`))?.value, { inFlight: 3 });
      assert.deepEqual(
        (await b.list(`${ns}/instances/`)).map((v) => v.key),
        [`${ns}/instances/one`],
      );
      await publisher.close();
      await eventually(
        'published key gone after its publisher closed',
        async () => (await b.get(`${ns}/instances/one`)) === undefined,
      );
    });

    test('a held lock refuses a second holder naming the first; release lets the second in', async () => {
      fresh();
      const lock = await a.lock(`${ns}-release`, 'conductor-A', 5);
      assert.equal(lock.holder, 'conductor-A');
      await assert.rejects(b.lock(`${ns}-release`, 'conductor-B', 5), (err: unknown) => {
        assert.ok(err instanceof LockHeldError);
        assert.equal(err.lockName, `${ns}-release`);
        assert.match(err.holder, /conductor-A/);
        assert.match(err.message, /conductor-A/);
        return true;
      });
      await lock.release();
      await lock.release();
      const second = await b.lock(`${ns}-release`, 'conductor-B', 5);
      await assert.rejects(a.lock(`${ns}-release`, 'conductor-A', 5), LockHeldError);
      await second.release();
    });

    test('closing the store releases the locks it holds', async () => {
      fresh();
      const holder = await sut.open();
      await holder.lock(`${ns}-closing`, 'conductor-C', 30);
      await assert.rejects(a.lock(`${ns}-closing`, 'conductor-A', 5), LockHeldError);
      await holder.close();
      const lock = await a.lock(`${ns}-closing`, 'conductor-A', 5);
      await lock.release();
    });
  });
}
