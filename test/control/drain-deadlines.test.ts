// A drain's own deadline fires once when it passes, only while that drain goes on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrainDeadlines, type OwnedDeadline } from '../../src/control/drain-deadlines.js';
import type { DesiredState } from '../../src/model.js';
import { formatTarget } from '../../src/control/targets.js';
import { waitFor } from '../support/proxy.js';

const owner = { who: 'token:admin', from: '127.0.0.1' };
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

function state(clusterA: 'live' | 'draining', deadlineA?: string, memberB1?: string): DesiredState {
  return {
    clusters: {
      a: {
        traffic: clusterA,
        weight: 1,
        ...(clusterA === 'draining' ? { drainingSince: inMs(-1000) } : {}),
        ...(deadlineA ? { drainDeadline: { at: deadlineA, ...owner } } : {}),
      },
      b: { traffic: 'live', weight: 1 },
    },
    members: {
      'a/a1': { admin: 'ready', weight: 1 },
      'b/b1': {
        admin: memberB1 ? 'draining' : 'ready',
        weight: 1,
        ...(memberB1 ? { drainingSince: inMs(-1000), drainDeadline: { at: memberB1, ...owner } } : {}),
      },
    },
    sites: {},
  };
}

function recorder() {
  const fired: OwnedDeadline[] = [];
  const deadlines = new DrainDeadlines((owned) => fired.push(owned));
  return { fired, deadlines, names: () => fired.map((f) => `${formatTarget(f.target)} ${f.deadline.at}`) };
}

test('a deadline fires once for its drain, and again only when the drain gets a new one', async () => {
  const { fired, deadlines, names } = recorder();
  const first = inMs(-10);
  deadlines.sync(state('draining', first));
  await waitFor(() => fired.length === 1, 5000, 'the passed deadline to fire');
  assert.deepEqual(fired[0], { target: { kind: 'cluster', cluster: 'a' }, deadline: { at: first, ...owner } });
  // The same drain again (another change to the state): it has fired already.
  deadlines.sync(state('draining', first));
  const second = inMs(-5);
  deadlines.sync(state('draining', second));
  await waitFor(() => fired.length >= 2, 5000, 'the new deadline to fire');
  assert.deepEqual(names(), [`a ${first}`, `a ${second}`]);
  deadlines.close();
});

test('a drain that ends before its deadline closes nothing; a member drain has its own', async () => {
  const { fired, deadlines, names } = recorder();
  deadlines.sync(state('draining', inMs(200)));
  // The cluster goes live again; a member of another cluster drains with a later deadline.
  const later = inMs(400);
  deadlines.sync(state('live', undefined, later));
  await waitFor(() => fired.length > 0, 5000, "the member's deadline to fire");
  // Had the cluster's timer survived, it would have fired first.
  assert.deepEqual(names(), [`b/b1 ${later}`]);
  assert.deepEqual(fired[0]!.target, { kind: 'member', cluster: 'b', member: 'b1', key: 'b/b1' });
  deadlines.close();
});

test('closed tunnels are remembered for the deadline that closed them, until its drain ends', async () => {
  const { fired, deadlines } = recorder();
  const at = inMs(-10);
  deadlines.sync(state('draining', at));
  await waitFor(() => fired.length === 1, 5000, 'the deadline to fire');
  const target = { kind: 'cluster', cluster: 'a' } as const;
  assert.equal(deadlines.hasClosedTunnels(target, at), false);
  deadlines.closedTunnels(fired[0]!);
  assert.equal(deadlines.hasClosedTunnels(target, at), true);
  deadlines.sync(state('live'));
  assert.equal(deadlines.hasClosedTunnels(target, at), false);
  deadlines.close();
});

test('a drain that ends after its deadline, before its timer ran, still has the deadline act, once', () => {
  const { deadlines, names } = recorder();
  const at = inMs(-10);
  deadlines.sync(state('draining', at));
  // In the same tick (a reader saw the deadline pass and took the cluster out): the timer has not run.
  deadlines.sync(state('live'));
  assert.deepEqual(names(), [`a ${at}`]);
  deadlines.sync(state('live'));
  assert.deepEqual(names(), [`a ${at}`]);
  deadlines.close();
});

test('once closed, a sync schedules and fires nothing', () => {
  const { fired, deadlines } = recorder();
  deadlines.close();
  deadlines.sync(state('draining', inMs(-10)));
  // Had the first sync scheduled it, ending the drain now would fire it (the test above).
  deadlines.sync(state('live'));
  assert.equal(fired.length, 0);
});
