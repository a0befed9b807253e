import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemberRuntime } from '../../src/balance/member.js';
import { createPolicy, LeastBusy, P2cEwma, RoundRobin, type Candidate, type Policy } from '../../src/balance/policy.js';
import { BALANCE_POLICIES, type BalancePolicy } from '../../src/model.js';
import { idleTransport } from '../support/snapshot.js';

function candidates(weights: number[]): Candidate[] {
  return weights.map((weight, i) => ({
    member: new MemberRuntime(
      `c/m${i}`,
      'c',
      `m${i}`,
      { url: `http://127.0.0.1:${9000 + i}`, weight, state: 'ready', packet_size: 8192, tls_verify: true },
      idleTransport,
    ),
    weight,
    current: 0,
  }));
}

function counts(pick: () => Candidate | undefined, n: number): number[] {
  const result = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const c = pick()!;
    result.set(c.member.id, (result.get(c.member.id) ?? 0) + 1);
  }
  return [...result.entries()].sort().map(([, v]) => v);
}

describe('round-robin', () => {
  it('interleaves by weight (nginx smooth weighted): 5,1,1 gives a a b a c a a', () => {
    const cs = candidates([5, 1, 1]);
    const rr = new RoundRobin();
    const order = Array.from({ length: 7 }, () => rr.pick(cs, 0, undefined)!.member.id);
    assert.deepEqual(order, ['m0', 'm0', 'm1', 'm0', 'm2', 'm0', 'm0']);
  });
});

describe('least-busy', () => {
  it('prefers the member with the fewest requests in flight relative to weight', () => {
    const cs = candidates([1, 1, 2]);
    cs[0]!.member.inFlight = 3;
    cs[1]!.member.inFlight = 1;
    cs[2]!.member.inFlight = 3;
    const lb = new LeastBusy();
    assert.equal(lb.pick(cs, 0, undefined)!.member.id, 'm1');
    cs[1]!.member.inFlight = 2;
    assert.equal(lb.pick(cs, 0, undefined)!.member.id, 'm2', '3/2 < 2/1');
  });

  it('spreads by weight when nothing is busy', () => {
    const cs = candidates([1, 3]);
    const lb = new LeastBusy();
    assert.deepEqual(
      counts(() => lb.pick(cs, 0, undefined), 400),
      [100, 300],
    );
  });
});

describe('p2c-ewma', () => {
  it('picks the cheaper of two by latency EWMA × in flight', () => {
    const cs = candidates([1, 1]);
    cs[0]!.member.observe(200, 50);
    cs[1]!.member.observe(200, 5);
    const p2c = new P2cEwma();
    assert.deepEqual(
      counts(() => p2c.pick(cs, 0, undefined), 50),
      [50],
    );
    assert.equal(p2c.pick(cs, 0, undefined)!.member.id, 'm1');
  });

  it('draws in proportion to weight when members cost the same', () => {
    const cs = candidates([1, 1, 1, 1]);
    let seed = 1;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const p2c = new P2cEwma(random);
    const result = counts(() => p2c.pick(cs, 0, undefined), 4000);
    assert.equal(result.length, 4);
    for (const n of result) assert.ok(n > 700 && n < 1300, `share ${n} of 4000 is far from 1000`);
  });
});

describe('every policy', () => {
  const classes: Record<BalancePolicy, new () => Policy> = {
    'round-robin': RoundRobin,
    'least-busy': LeastBusy,
    'p2c-ewma': P2cEwma,
  };
  for (const name of BALANCE_POLICIES) {
    it(`"${name}" in the config is ${classes[name].name}`, () =>
      assert.ok(createPolicy(name) instanceof classes[name]));
  }

  // m0 is made ineligible; the policy must pick only m1 and m2, and nothing once they are ineligible too.
  const now = 1_000_000;
  const reasons: { name: string; make: (c: Candidate) => void; excluded?: boolean }[] = [
    { name: 'a member tried already by this request', make: () => {}, excluded: true },
    { name: 'a member down by health checks', make: (c) => (c.member.health = 'down') },
    { name: 'a member ejected by passive checks', make: (c) => (c.member.ejectedUntil = now + 1) },
    { name: 'a member of weight 0', make: (c) => (c.weight = 0) },
  ];
  for (const name of BALANCE_POLICIES) {
    for (const reason of reasons) {
      it(`${name} never picks ${reason.name}`, () => {
        const cs = candidates([5, 1, 1]);
        reason.make(cs[0]!);
        const policy = createPolicy(name);
        const exclude = reason.excluded ? [cs[0]!.member] : undefined;
        const picked = new Set(Array.from({ length: 30 }, () => policy.pick(cs, now, exclude)?.member.id));
        assert.deepEqual([...picked].sort(), ['m1', 'm2']);
        for (const c of cs.slice(1)) reason.make(c);
        const all = reason.excluded ? cs.map((c) => c.member) : undefined;
        assert.equal(policy.pick(cs, now, all), undefined);
      });
    }
    it(`${name} picks a member again once its ejection has ended`, () => {
      const cs = candidates([1]);
      cs[0]!.member.ejectedUntil = now;
      assert.equal(createPolicy(name).pick(cs, now, undefined)?.member.id, 'm0');
    });
  }
});
