// SessionTracker.adopt: the sessions a previous generation hands over at an upgrade.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionTracker } from '../../src/control/session-tracker.js';
import type { MemberKey } from '../../src/model.js';

const A = 'prod-a/a1' as MemberKey;
const B = 'prod-b/b1' as MemberKey;

/** A tracker that issued `sessions` (member, id) at times 1, 2, 3… */
function tracker(max: number, sessions: [MemberKey, string][]): SessionTracker {
  const t = new SessionTracker(max);
  sessions.forEach(([member, id], i) => t.issued(member, id, i + 1));
  return t;
}

describe('sessions handed to the next generation', () => {
  const cases: {
    name: string;
    max: number;
    handed: [MemberKey, string][];
    own: [MemberKey, string][];
    kept: string[];
  }[] = [
    {
      name: 'keeps every handed session, with its member and last-seen time',
      max: 10,
      handed: [
        [A, 's1'],
        [B, 's2'],
      ],
      own: [],
      kept: ['s1', 's2'],
    },
    {
      name: 'puts handed sessions before its own (they were seen earlier)',
      max: 10,
      handed: [[A, 's1']],
      own: [[B, 'mine']],
      kept: ['s1', 'mine'],
    },
    {
      name: 'keeps at most max, evicting the least recently seen',
      max: 2,
      handed: [
        [A, 's1'],
        [A, 's2'],
        [A, 's3'],
      ],
      own: [],
      kept: ['s2', 's3'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const next = tracker(c.max, c.own);
      next.adopt(tracker(10, c.handed).entries());
      assert.deepEqual(
        next.entries().map((e) => e.key.split('\n')[1]),
        c.kept,
      );
      const handed = tracker(10, c.handed).entries();
      for (const entry of next.entries())
        if (handed.some((h) => h.key === entry.key))
          assert.deepEqual(
            entry,
            handed.find((h) => h.key === entry.key),
          );
    });
  }

  it('counts adopted sessions towards their member in a drain', () => {
    const next = new SessionTracker(10);
    next.adopt(tracker(10, [[A, 's1']]).entries());
    next.seen(A, 's1', 100);
    assert.deepEqual(next.byMember(100, 50).get(A), { active: 1, oldestIdleMs: 0 });
  });
});
