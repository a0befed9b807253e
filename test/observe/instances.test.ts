import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  aggregateInstances,
  defaultInstanceId,
  instanceFigures,
  instanceTotals,
  startPublishing,
  worstHealth,
  type InstanceFigures,
} from '../../src/observe/instances.js';
import type { MemberStats } from '../../src/proxy/handle.js';
import { FileStore } from '../../src/store/file.js';
import { eventually } from '../store/store-contract.js';

function figures(id: string, members: InstanceFigures['members']): InstanceFigures {
  return { id, host: 'h', pid: 1, version: '0.1.0', at: '2026-01-01T00:00:00.000Z', members };
}

test('totals add in flight, sessions and tunnels per member across instances; health is the worst seen', () => {
  const totals = aggregateInstances([
    figures('b', {
      'blue/a1': { inFlight: 2, sessions: 3, tunnels: 1, health: 'up' },
      'blue/a2': { inFlight: 0, sessions: 0, tunnels: 0, health: 'up' },
    }),
    figures('a', {
      'blue/a1': { inFlight: 5, sessions: 1, tunnels: 0, health: 'down' },
      'blue/a2': { inFlight: 1, sessions: 0, tunnels: 2, health: 'unknown' },
    }),
  ]);
  assert.deepEqual(
    totals.instances.map((i) => i.id),
    ['a', 'b'],
  );
  assert.deepEqual(totals.members['blue/a1'], {
    inFlight: 7,
    sessions: 4,
    tunnels: 1,
    health: 'down',
    healthBy: { b: 'up', a: 'down' },
  });
  assert.deepEqual(totals.members['blue/a2'], {
    inFlight: 1,
    sessions: 0,
    tunnels: 2,
    health: 'unknown',
    healthBy: { b: 'up', a: 'unknown' },
  });
  assert.deepEqual(aggregateInstances([]), { instances: [], members: {} });
});

test('worst health: down over unknown over up', () => {
  assert.equal(worstHealth('up', 'unknown'), 'unknown');
  assert.equal(worstHealth('unknown', 'up'), 'unknown');
  assert.equal(worstHealth('down', 'unknown'), 'down');
  assert.equal(worstHealth('up', 'up'), 'up');
});

test('instance figures come from the proxy stats and the session counts', () => {
  const member: MemberStats = {
    key: 'blue/a1',
    cluster: 'blue',
    id: 'a1',
    url: 'http://127.0.0.1:1',
    health: 'up',
    inFlight: 4,
    openTunnels: 2,
    responses: [0, 10, 0, 0, 0],
    failures: 0,
    latencyBuckets: [],
    latencySumMs: 0,
  };
  const result = instanceFigures(
    { id: 'proxy-a', version: '1.0.0' },
    { members: [member], sites: [] },
    new Map([['blue/a1', { active: 9, oldestIdleMs: 0 }]]),
    new Date(0),
  );
  assert.deepEqual(result.members, { 'blue/a1': { inFlight: 4, sessions: 9, tunnels: 2, health: 'up' } });
  assert.equal(result.pid, process.pid);
  assert.equal(result.at, '1970-01-01T00:00:00.000Z');
  assert.match(defaultInstanceId(), /^[A-Za-z0-9_.-]+$/);
});

test('startPublishing keeps figures alive past their TTL; after stop they expire', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-instances-'));
  const store = await FileStore.open(dir);
  try {
    let round = 0;
    const publisher = startPublishing(
      store,
      () => figures('proxy-a', { 'blue/a1': { inFlight: ++round, sessions: 0, tunnels: 0, health: 'up' } }),
      { ttlSeconds: 1 },
    );
    await publisher.publishNow();
    assert.equal((await instanceTotals(store)).instances.length, 1);
    // Republished every third of the TTL: the in-flight count keeps moving while the key never lapses.
    await eventually('republished several times', async () => {
      const totals = await instanceTotals(store);
      assert.equal(totals.instances.length, 1, 'never expired while publishing');
      return (totals.members['blue/a1']?.inFlight ?? 0) >= 5;
    });
    publisher.stop();
    await eventually('expired after stop', async () => (await instanceTotals(store)).instances.length === 0);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
