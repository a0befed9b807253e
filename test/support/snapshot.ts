// Routing snapshots built from a config object without starting a proxy, for table tests of the pure
// parts (site and route matching, candidate lists, member selection). Members get a transport that is
// never used: nothing here sends a request.
import { memberKey, type MemberKey, memberId, type DesiredState } from '../../src/model.js';
import { MemberRuntime } from '../../src/balance/member.js';
import { initialState } from '../../src/control/desired-state.js';
import { buildSnapshot, type Snapshot } from '../../src/proxy/snapshot.js';
import type { Transport } from '../../src/proxy/member-transport.js';
import { loadObject } from './proxy.js';

export const idleTransport: Transport = {
  request: () => Promise.reject(new Error('unused')),
  close: () => Promise.resolve(),
};

/**
 * The snapshot the proxy would build from `config` (the YAML document as an object, `listen` filled in)
 * and the initial state, after `change` has edited that state as an operator would.
 */
export function snapshotOf(
  config: Record<string, unknown>,
  change: (state: DesiredState) => void = () => {},
): Snapshot {
  const loaded = loadObject({ listen: { http: '127.0.0.1:0' }, health: { enabled: false }, ...config });
  const state = initialState(loaded.config);
  change(state);
  const members = new Map<MemberKey, MemberRuntime>();
  for (const [cluster, c] of Object.entries(loaded.config.clusters)) {
    c.members.forEach((m, i) => {
      const key = memberKey(cluster, memberId(m.route, i));
      members.set(key, new MemberRuntime(key, cluster, memberId(m.route, i), m, idleTransport));
    });
  }
  return buildSnapshot(loaded, state, members, new Map(), new Map());
}
