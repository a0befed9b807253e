// The rollback rules an abort follows, as tables: which clusters were deployed to, which keep serving, get
// the rollback hook or stay out, and how the traffic from before the release comes back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deployedClusters, planRollback, restoreMove, restoreOrder } from '../../src/release/rollback.js';
import type { ClusterTraffic, HookStep, ReleaseStep } from '../../src/release/types.js';

const started = '2026-01-01T10:00:00.000Z';

function hook(id: string, hookName: HookStep['hook'], cluster?: string, startedAt?: string): HookStep {
  return {
    id,
    kind: 'hook',
    hook: hookName,
    ...(cluster ? { cluster } : {}),
    title: id,
    state: startedAt ? 'succeeded' : 'pending',
    repeatable: false,
    ...(startedAt ? { startedAt } : {}),
  };
}

function drain(cluster: string): ReleaseStep {
  return {
    id: `${cluster}:drain`,
    kind: 'drain',
    cluster,
    title: 'drain',
    state: 'succeeded',
    repeatable: true,
    startedAt: started,
  };
}

describe('rollback: deployed clusters', () => {
  const cases: { name: string; steps: ReleaseStep[]; deployed: string[] }[] = [
    { name: 'nothing started', steps: [drain('a'), hook('a:deploy', 'deploy', 'a')], deployed: [] },
    { name: 'a started deploy hook', steps: [drain('a'), hook('a:deploy', 'deploy', 'a', started)], deployed: ['a'] },
    { name: 'a started stop hook counts too', steps: [hook('a:stop', 'stop', 'a', started)], deployed: ['a'] },
    { name: 'release-wide hooks name no cluster', steps: [hook('before', 'before', undefined, started)], deployed: [] },
    {
      name: 'one entry per cluster, in release order',
      steps: [
        hook('b:stop', 'stop', 'b', started),
        hook('b:deploy', 'deploy', 'b', started),
        hook('a:deploy', 'deploy', 'a', started),
      ],
      deployed: ['b', 'a'],
    },
    {
      name: 'an earlier rollback is no deployment',
      steps: [hook('a:rollback', 'rollback', 'a', started)],
      deployed: [],
    },
    { name: 'drains are no deployment', steps: [drain('a')], deployed: [] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(deployedClusters(c.steps), c.deployed));
  }
});

describe('rollback: plan', () => {
  const cases: {
    name: string;
    deployed: string[];
    live: string[];
    hook: boolean;
    serving: string[];
    rollBack: string[];
    keepOut: string[];
    notes: RegExp[];
  }[] = [
    {
      name: 'nothing deployed, with a hook',
      deployed: [],
      live: ['a', 'b'],
      hook: true,
      serving: [],
      rollBack: [],
      keepOut: [],
      notes: [/no rollback hook needed/],
    },
    {
      name: 'nothing deployed, without a hook',
      deployed: [],
      live: ['a', 'b'],
      hook: false,
      serving: [],
      rollBack: [],
      keepOut: [],
      notes: [],
    },
    {
      name: 'deployed and out: rolled back',
      deployed: ['a'],
      live: ['b'],
      hook: true,
      serving: [],
      rollBack: ['a'],
      keepOut: [],
      notes: [],
    },
    {
      name: 'deployed and out without a hook: stays out',
      deployed: ['a'],
      live: ['b'],
      hook: false,
      serving: [],
      rollBack: [],
      keepOut: ['a'],
      notes: [/no rollback hook: a was deployed to and stays out/],
    },
    {
      name: 'deployed and live: keeps serving',
      deployed: ['a'],
      live: ['a', 'b'],
      hook: true,
      serving: ['a'],
      rollBack: [],
      keepOut: [],
      notes: [/a is live with version 2\.0/, /no rollback hook needed/],
    },
    {
      name: 'live one serves, out one is rolled back',
      deployed: ['a', 'b'],
      live: ['a'],
      hook: true,
      serving: ['a'],
      rollBack: ['b'],
      keepOut: [],
      notes: [/a is live/],
    },
    {
      name: 'the last deployed is rolled back first',
      deployed: ['a', 'b', 'c'],
      live: [],
      hook: true,
      serving: [],
      rollBack: ['c', 'b', 'a'],
      keepOut: [],
      notes: [],
    },
    {
      name: 'without a hook every out one stays out',
      deployed: ['a', 'b'],
      live: ['a'],
      hook: false,
      serving: ['a'],
      rollBack: [],
      keepOut: ['b'],
      notes: [/a is live/, /no rollback hook: b/],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planRollback('2.0', c.deployed, (cluster) => c.live.includes(cluster), c.hook);
      assert.deepEqual(
        { serving: plan.serving, rollBack: plan.rollBack, keepOut: plan.keepOut },
        { serving: c.serving, rollBack: c.rollBack, keepOut: c.keepOut },
      );
      assert.equal(plan.notes.length, c.notes.length, plan.notes.join('\n'));
      c.notes.forEach((note, i) => assert.match(plan.notes[i]!, note));
    });
  }
});

describe('rollback: restoring traffic', () => {
  it('makes the clusters live before the release live first', () => {
    const before: Record<string, ClusterTraffic> = {
      a: { traffic: 'out', weight: 1 },
      b: { traffic: 'live', weight: 2 },
      c: { traffic: 'draining', weight: 1 },
      d: { traffic: 'live', weight: 1 },
    };
    assert.deepEqual(
      restoreOrder(before).map(([c]) => c),
      ['b', 'd', 'a', 'c'],
    );
  });

  const live = (weight: number): ClusterTraffic => ({ traffic: 'live', weight });
  const out: ClusterTraffic = { traffic: 'out', weight: 1 };
  const draining: ClusterTraffic = { traffic: 'draining', weight: 1 };
  const cases: {
    name: string;
    was: ClusterTraffic;
    now: ClusterTraffic | undefined;
    keptOut: boolean;
    move: ClusterTraffic | undefined;
  }[] = [
    { name: 'live, still live with its weight: nothing', was: live(2), now: live(2), keptOut: false, move: undefined },
    {
      name: 'live, now live with another weight: its weight back',
      was: live(2),
      now: live(50),
      keptOut: false,
      move: live(2),
    },
    { name: 'live, now out: live again', was: live(1), now: out, keptOut: false, move: live(1) },
    { name: 'live, now draining: live again', was: live(1), now: draining, keptOut: false, move: live(1) },
    { name: 'live, unknown now: live again', was: live(1), now: undefined, keptOut: false, move: live(1) },
    {
      name: 'live but kept out (no or failed rollback): stays as it is',
      was: live(1),
      now: out,
      keptOut: true,
      move: undefined,
    },
    { name: 'out, still out: nothing', was: out, now: out, keptOut: false, move: undefined },
    { name: 'out, now live: out again', was: out, now: live(1), keptOut: false, move: out },
    { name: 'draining, now out: draining again', was: draining, now: out, keptOut: false, move: draining },
    {
      name: 'draining, still draining: nothing',
      was: draining,
      now: { traffic: 'draining', weight: 3 },
      keptOut: false,
      move: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(restoreMove(c.was, c.now, c.keptOut), c.move));
  }
});
