import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemberRuntime } from '../../src/balance/member.js';
import { LeastBusy, P2cEwma, RoundRobin, type Candidate } from '../../src/balance/policy.js';
import type { Transport } from '../../src/proxy/transport.js';

const idle: Transport = { request: () => Promise.reject(new Error('unused')), close: () => Promise.resolve() };

function candidates(weights: number[]): Candidate[] {
  return weights.map((weight, i) => ({
    member: new MemberRuntime(`c/m${i}`, 'c', `m${i}`, { url: `http://127.0.0.1:${9000 + i}`, weight, state: 'ready', packet_size: 8192, tls_verify: true }, idle),
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

  it('skips excluded, ejected, down and zero-weight members', () => {
    const cs = candidates([1, 1, 1, 0]);
    cs[1]!.member.health = 'down';
    cs[2]!.member.ejectedUntil = Date.now() + 10_000;
    const rr = new RoundRobin();
    assert.deepEqual(counts(() => rr.pick(cs, Date.now(), undefined), 10), [10]);
    assert.equal(rr.pick(cs, Date.now(), [cs[0]!.member]), undefined);
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
    assert.deepEqual(counts(() => lb.pick(cs, 0, undefined), 400), [100, 300]);
  });
});

describe('p2c-ewma', () => {
  it('picks the cheaper of two by latency EWMA × in flight', () => {
    const cs = candidates([1, 1]);
    cs[0]!.member.observe(200, 50);
    cs[1]!.member.observe(200, 5);
    const p2c = new P2cEwma();
    assert.deepEqual(counts(() => p2c.pick(cs, 0, undefined), 50), [50]);
    assert.equal(p2c.pick(cs, 0, undefined)!.member.id, 'm1');
  });

  it('draws in proportion to weight when members cost the same', () => {
    const cs = candidates([1, 1, 1, 1]);
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const p2c = new P2cEwma(random);
    const result = counts(() => p2c.pick(cs, 0, undefined), 4000);
    assert.equal(result.length, 4);
    for (const n of result) assert.ok(n > 700 && n < 1300, `share ${n} of 4000 is far from 1000`);
  });
});
