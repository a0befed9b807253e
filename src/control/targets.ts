// Operators name what they act on as CLUSTER or CLUSTER/MEMBER (member by route or 1-based index).
import type { DayshiftConfig } from '../config/schema.js';
import { memberKey, type MemberKey, memberId } from '../model.js';
import { TargetError } from './errors.js';

export type Target =
  { kind: 'cluster'; cluster: string } | { kind: 'member'; cluster: string; member: string; key: MemberKey };

export function parseTarget(config: DayshiftConfig, text: string): Target {
  const [clusterName, member, extra] = text.split('/');
  if (!clusterName || extra !== undefined)
    throw new TargetError(`"${text}" is not a target: expected CLUSTER or CLUSTER/MEMBER`);
  const cluster = Object.hasOwn(config.clusters, clusterName) ? config.clusters[clusterName] : undefined;
  if (!cluster)
    throw new TargetError(`unknown cluster "${clusterName}"; clusters: ${Object.keys(config.clusters).join(', ')}`);
  if (member === undefined || member === '') return { kind: 'cluster', cluster: clusterName };
  const ids = cluster.members.map((m, i) => memberId(m.route, i));
  let id = ids.find((candidate) => candidate === member);
  if (id === undefined && /^\d+$/.test(member)) id = ids[Number(member) - 1];
  if (id === undefined)
    throw new TargetError(
      `cluster ${clusterName} has no member "${member}"; members: ${ids.join(', ')} (or 1-${ids.length} by position)`,
    );
  return { kind: 'member', cluster: clusterName, member: id, key: memberKey(clusterName, id) };
}

export function formatTarget(target: Target): string {
  return target.kind === 'cluster' ? target.cluster : target.key;
}

/** Members a target covers. */
export function targetMembers(config: DayshiftConfig, target: Target): MemberKey[] {
  if (target.kind === 'member') return [target.key];
  return config.clusters[target.cluster]!.members.map((m, i) => memberKey(target.cluster, memberId(m.route, i)));
}
