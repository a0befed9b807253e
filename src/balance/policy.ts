// Selection policies behind one small interface (Caddy's shape). A policy sees a route's candidates
// for new sessions and picks one that is usable now and not already tried by this request.
import type { BalancePolicy } from '../model.js';
import type { MemberRuntime } from './member.js';

export interface Candidate {
  member: MemberRuntime;
  /** Effective weight: the member's weight, scaled by its cluster's share on shared routes. */
  weight: number;
  /** Smooth weighted round-robin state (per snapshot: a new snapshot starts a fresh cycle). */
  current: number;
}

export interface Policy {
  pick(
    candidates: readonly Candidate[],
    now: number,
    exclude: readonly MemberRuntime[] | undefined,
  ): Candidate | undefined;
}

function eligible(c: Candidate, now: number, exclude: readonly MemberRuntime[] | undefined): boolean {
  return c.weight > 0 && c.member.usable(now) && (exclude === undefined || !exclude.includes(c.member));
}

/**
 * Smooth weighted round-robin (nginx): every pick adds each weight to its candidate's counter, takes the
 * highest and subtracts the total from it; weights 5,1,1 give a,a,b,a,c,a,a rather than bursts.
 */
export class RoundRobin implements Policy {
  pick(
    candidates: readonly Candidate[],
    now: number,
    exclude: readonly MemberRuntime[] | undefined,
  ): Candidate | undefined {
    let best: Candidate | undefined;
    let total = 0;
    for (const c of candidates) {
      if (!eligible(c, now, exclude)) continue;
      c.current += c.weight;
      total += c.weight;
      if (best === undefined || c.current > best.current) best = c;
    }
    if (best) best.current -= total;
    return best;
  }
}

/**
 * Fewest requests in flight relative to weight (Apache bybusyness); ties, as at low load, go by smooth
 * weighted round-robin so that weights still hold when nothing is busy.
 */
export class LeastBusy implements Policy {
  pick(
    candidates: readonly Candidate[],
    now: number,
    exclude: readonly MemberRuntime[] | undefined,
  ): Candidate | undefined {
    let min = Infinity;
    for (const c of candidates) {
      if (!eligible(c, now, exclude)) continue;
      const load = c.member.inFlight / c.weight;
      if (load < min) min = load;
    }
    if (min === Infinity) return undefined;
    let best: Candidate | undefined;
    let total = 0;
    for (const c of candidates) {
      if (!eligible(c, now, exclude) || c.member.inFlight / c.weight !== min) continue;
      c.current += c.weight;
      total += c.weight;
      if (best === undefined || c.current > best.current) best = c;
    }
    if (best) best.current -= total;
    return best;
  }
}

/**
 * Power of two choices: two candidates drawn at random (with probability proportional to weight), the one
 * with the lower latency EWMA × (in flight + 1) wins. Cheap, and avoids herding onto one fast member.
 */
export class P2cEwma implements Policy {
  constructor(private readonly random: () => number = Math.random) {}

  pick(
    candidates: readonly Candidate[],
    now: number,
    exclude: readonly MemberRuntime[] | undefined,
  ): Candidate | undefined {
    let total = 0;
    let count = 0;
    let only: Candidate | undefined;
    for (const c of candidates) {
      if (!eligible(c, now, exclude)) continue;
      total += c.weight;
      count++;
      only = c;
    }
    if (count <= 1) return only;
    const a = this.draw(candidates, now, exclude, total, undefined);
    const b = this.draw(candidates, now, exclude, total - a.weight, a);
    return this.cost(a) <= this.cost(b) ? a : b;
  }

  private cost(c: Candidate): number {
    return ((c.member.ewmaMs + 1) * (c.member.inFlight + 1)) / c.weight;
  }

  private draw(
    candidates: readonly Candidate[],
    now: number,
    exclude: readonly MemberRuntime[] | undefined,
    total: number,
    skip: Candidate | undefined,
  ): Candidate {
    let r = this.random() * total;
    let last: Candidate | undefined;
    for (const c of candidates) {
      if (c === skip || !eligible(c, now, exclude)) continue;
      last = c;
      r -= c.weight;
      if (r < 0) return c;
    }
    return last!;
  }
}

export function createPolicy(policy: BalancePolicy): Policy {
  switch (policy) {
    case 'round-robin':
      return new RoundRobin();
    case 'least-busy':
      return new LeastBusy();
    case 'p2c-ewma':
      return new P2cEwma();
  }
}
