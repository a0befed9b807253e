// Figures from several workers made one: counters and gauges summed, histograms bucket by bucket,
// health the worst, and a dead worker's counters kept without its gauges.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemberStats, ProxyStats } from '../../src/proxy/handle.js';
import { mergeStats, retire } from '../../src/workers/merge.js';

function member(overrides: Partial<MemberStats> = {}): MemberStats {
  return {
    key: 'web/1',
    cluster: 'web',
    id: '1',
    url: 'http://127.0.0.1:8081',
    health: 'up',
    inFlight: 0,
    responses: [0, 0, 0, 0, 0],
    failures: 0,
    latencyBuckets: [0, 0, 0],
    latencySumMs: 0,
    openTunnels: 0,
    ...overrides,
  };
}

const stats = (members: MemberStats[], site = [0, 0, 0, 0, 0]): ProxyStats => ({
  members,
  sites: [{ name: 'public', responses: site as ProxyStats['sites'][number]['responses'] }],
});

const cases: {
  name: string;
  live: ProxyStats[];
  retired?: ProxyStats;
  expect: Partial<MemberStats>;
  site?: number[];
}[] = [
  {
    name: 'counters and gauges are summed',
    live: [
      stats([member({ inFlight: 2, openTunnels: 1, failures: 1, responses: [0, 5, 0, 1, 0] })], [0, 6, 0, 0, 0]),
      stats([member({ inFlight: 3, openTunnels: 2, failures: 0, responses: [0, 7, 1, 0, 2] })], [0, 8, 0, 0, 1]),
    ],
    expect: { inFlight: 5, openTunnels: 3, failures: 1, responses: [0, 12, 1, 1, 2] },
    site: [0, 14, 0, 0, 1],
  },
  {
    name: 'latency histograms are added bucket by bucket (percentiles come from the sum)',
    live: [
      stats([member({ latencyBuckets: [10, 0, 0], latencySumMs: 5 })]),
      stats([member({ latencyBuckets: [0, 0, 10], latencySumMs: 500 })]),
    ],
    expect: { latencyBuckets: [10, 0, 10], latencySumMs: 505 },
  },
  {
    name: 'health is the worst a worker has: down (a passive ejection) over up',
    live: [stats([member()]), stats([member({ health: 'down', healthReason: 'ejected for 30000ms' })])],
    expect: { health: 'down', healthReason: 'ejected for 30000ms' },
  },
  {
    name: 'unknown is worse than up (a worker that has not had the checks yet)',
    live: [stats([member({ health: 'unknown' })]), stats([member()])],
    expect: { health: 'unknown' },
  },
  {
    name: "a dead worker's counters stay in the totals, its requests in flight and tunnels do not",
    live: [stats([member({ inFlight: 1, responses: [0, 1, 0, 0, 0] })])],
    retired: retire(undefined, stats([member({ inFlight: 4, openTunnels: 2, responses: [0, 9, 0, 0, 0] })])),
    expect: { inFlight: 1, openTunnels: 0, responses: [0, 10, 0, 0, 0] },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const merged = mergeStats(c.live, c.retired);
    assert.equal(merged.members.length, 1);
    const m = merged.members[0]!;
    for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(m[key as keyof MemberStats], value, key);
    if (c.site) assert.deepEqual(merged.sites[0]!.responses, c.site);
  });
}

test("merging never changes the workers' own figures", () => {
  const a = stats([member({ responses: [0, 1, 0, 0, 0], latencyBuckets: [1, 0, 0] })]);
  const before = structuredClone(a);
  mergeStats([a, stats([member({ responses: [0, 2, 0, 0, 0], latencyBuckets: [0, 1, 0] })])], undefined);
  assert.deepEqual(a, before);
});

test('a member only a dead worker knew (removed since) is not brought back', () => {
  const retired = retire(undefined, stats([member({ key: 'old/1', responses: [0, 3, 0, 0, 0] })]));
  assert.deepEqual(
    mergeStats([stats([member()])], retired).members.map((m) => m.key),
    ['web/1'],
  );
});
