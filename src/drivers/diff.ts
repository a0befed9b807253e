// Turns a change of desired state into the fine-grained calls of a driver, for load balancers that are
// told one member change at a time (Apache's balancer-manager, HAProxy's Runtime API). Those know no
// clusters, so each member gets its effective state: the stricter of its own and its cluster's.
import { splitMemberKey, type AdminState, type MemberKey, type TrafficState, type DesiredState } from '../model.js';
import type { DriverName, DriverStatus } from './driver.js';
import { DriverUnsupportedError } from './errors.js';

export interface EffectiveMember {
  admin: AdminState;
  weight: number;
}

/** What a member must look like on a load balancer that has no notion of clusters. */
export function effectiveMember(
  traffic: TrafficState,
  clusterWeight: number,
  admin: AdminState,
  weight: number,
): EffectiveMember {
  if (traffic === 'out') return { admin: 'disabled', weight };
  if (traffic === 'draining') return { admin: admin === 'disabled' ? 'disabled' : 'draining', weight };
  return { admin, weight: weight * clusterWeight };
}

export function effectiveMembers(state: DesiredState): Map<MemberKey, EffectiveMember> {
  const result = new Map<MemberKey, EffectiveMember>();
  for (const [key, member] of Object.entries(state.members) as [MemberKey, DesiredState['members'][MemberKey]][]) {
    const cluster = state.clusters[splitMemberKey(key)[0]];
    result.set(key, cluster ? effectiveMember(cluster.traffic, cluster.weight, member.admin, member.weight) : member);
  }
  return result;
}

/**
 * Refuses a state in which a member's weight × its cluster's weight (a canary's share) falls outside what
 * the load balancer accepts: whatever the cluster's traffic now, since it is applied once the cluster is
 * live again, and refusing then would stop a release halfway.
 */
export function checkWeights(
  driver: { readonly name: DriverName },
  next: DesiredState,
  range: { min: number; max: number; what: string },
): void {
  const outside = (Object.entries(next.members) as [MemberKey, DesiredState['members'][MemberKey]][])
    .map(([key, member]) => [key, member.weight * (next.clusters[splitMemberKey(key)[0]]?.weight ?? 1)] as const)
    .filter(([, weight]) => !Number.isInteger(weight) || weight < range.min || weight > range.max);
  if (outside.length === 0) return;
  const list = outside.map(([key, weight]) => `${key} ${weight}`).join(', ');
  throw new DriverUnsupportedError({
    driver: driver.name,
    what: `give ${list}: ${range.what} is ${range.min} to ${range.max}, and member weight × cluster weight must fit it`,
  });
}

/** A load balancer that is told one member change at a time. */
export interface MemberChanges {
  readonly name: DriverName;
  setMemberState(cluster: string, member: string, state: AdminState): Promise<void>;
  setMemberWeight(cluster: string, member: string, weight: number): Promise<void>;
}

export async function applyStateDiff(
  driver: MemberChanges,
  next: DesiredState,
  previous: DesiredState | undefined,
): Promise<void> {
  for (const [name, site] of Object.entries(next.sites)) {
    if ((site.maintenance || site.pause) && JSON.stringify(site) !== JSON.stringify(previous?.sites[name] ?? {})) {
      throw new DriverUnsupportedError({ driver: driver.name, what: `put site ${name} in maintenance or pause it` });
    }
  }
  const before = previous ? effectiveMembers(previous) : new Map<MemberKey, EffectiveMember>();
  for (const [key, member] of effectiveMembers(next)) {
    const [cluster, id] = splitMemberKey(key);
    const old = before.get(key);
    if (old?.weight !== member.weight) await driver.setMemberWeight(cluster, id, member.weight);
    if (old?.admin !== member.admin) await driver.setMemberState(cluster, id, member.admin);
  }
}

/**
 * Applies the desired state again to each member whose state on the load balancer differs from it, and
 * says what it repaired. `same` tells a state read back that stands for the one wanted (HAProxy: a ready
 * backup server reads as standby). Members missing from the balancer are left to status() warnings.
 */
export async function repairDrift(
  driver: MemberChanges & { status(): Promise<DriverStatus> },
  state: DesiredState,
  same: (wanted: AdminState, found: AdminState) => boolean = (wanted, found) => wanted === found,
): Promise<string[]> {
  const found = new Map(
    (await driver.status()).clusters.flatMap((c) => c.members.map((m) => [`${c.name}/${m.id}`, m] as const)),
  );
  const repaired: string[] = [];
  for (const [key, wanted] of effectiveMembers(state)) {
    const member = found.get(key);
    if (!member) continue;
    const [cluster, id] = splitMemberKey(key);
    const changes: string[] = [];
    if (Math.abs(member.weight - wanted.weight) > 0.005) {
      await driver.setMemberWeight(cluster, id, wanted.weight);
      changes.push(`weight ${member.weight} → ${wanted.weight}`);
    }
    if (!same(wanted.admin, member.admin)) {
      await driver.setMemberState(cluster, id, wanted.admin);
      changes.push(`${member.admin} → ${wanted.admin}`);
    }
    if (changes.length > 0) repaired.push(`${key} ${changes.join(', ')}`);
  }
  return repaired;
}
