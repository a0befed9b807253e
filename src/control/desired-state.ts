// Desired runtime state in the store: where it lives (the key "state"), the state a fresh installation
// starts from, and how a stored state fits a changed config. Its shape (DesiredState) is vocabulary, in
// src/model.ts: the proxy and the drivers read it too.
import type { DayshiftConfig } from '../config/schema.js';
import { memberId, memberKey, type DesiredState, type MemberKey } from '../model.js';

export const STATE_KEY = 'state';

/** The state a fresh installation starts from: what the config file says. */
export function initialState(config: Pick<DayshiftConfig, 'clusters'>): DesiredState {
  const state: DesiredState = { clusters: {}, members: {}, sites: {} };
  for (const [name, cluster] of Object.entries(config.clusters)) {
    state.clusters[name] = { traffic: cluster.traffic, weight: cluster.weight };
    cluster.members.forEach((member, i) => {
      state.members[memberKey(name, memberId(member.route, i))] = { admin: member.state, weight: member.weight };
    });
  }
  return state;
}

/**
 * Fits a stored state to a (possibly changed) config: clusters and members the config no longer has are
 * dropped, new ones start from the config's values, everything else keeps what operators set.
 */
export function reconcileState(config: DayshiftConfig, stored: DesiredState | undefined): DesiredState {
  const fresh = initialState(config);
  if (!stored) return fresh;
  for (const name of Object.keys(fresh.clusters)) {
    const kept = stored.clusters[name];
    if (kept) fresh.clusters[name] = kept;
  }
  for (const key of Object.keys(fresh.members) as MemberKey[]) {
    const kept = stored.members[key];
    if (kept) fresh.members[key] = kept;
  }
  for (const name of Object.keys(config.sites)) {
    const kept = stored.sites[name];
    if (kept) fresh.sites[name] = kept;
  }
  for (const [id, preview] of Object.entries(stored.previews ?? {})) {
    if (Object.hasOwn(config.clusters, preview.cluster)) (fresh.previews ??= {})[id] = preview;
  }
  if (stored.shadow && Object.hasOwn(config.clusters, stored.shadow.cluster)) fresh.shadow = stored.shadow;
  return fresh;
}
