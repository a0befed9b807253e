// Drives a bare driver the way the control plane does (ControlPlane.change in src/control/plane.ts): every
// change is a new desired state, checked by the driver, then applied as a diff against the state applied
// before. Driver tests go through it so that they exercise the path Dayshift takes to a load balancer.
import type { Driver } from '../../src/drivers/driver.js';
import type { AdminState, MemberKey, TrafficState, DesiredState } from '../../src/model.js';

export class AppliedState {
  private constructor(
    private readonly driver: Driver,
    private current: DesiredState,
  ) {}

  /** Applies `state` in full (no previous state), as the control plane does when it opens. */
  static async open(driver: Driver, state: DesiredState): Promise<AppliedState> {
    const start = structuredClone(state);
    await driver.apply(start, undefined);
    return new AppliedState(driver, start);
  }

  get state(): DesiredState {
    return structuredClone(this.current);
  }

  /** Refused by the driver's check() before anything changes, as the control plane refuses it. */
  async change(mutate: (state: DesiredState) => void): Promise<void> {
    const previous = this.current;
    const next = structuredClone(previous);
    mutate(next);
    await this.driver.check?.(next);
    this.current = next;
    await this.driver.apply(next, previous);
  }

  setTraffic(cluster: string, traffic: TrafficState): Promise<void> {
    return this.change((state) => {
      clusterOf(state, cluster).traffic = traffic;
    });
  }

  setClusterWeight(cluster: string, weight: number): Promise<void> {
    return this.change((state) => {
      clusterOf(state, cluster).weight = weight;
    });
  }

  setMemberState(key: MemberKey, admin: AdminState): Promise<void> {
    return this.change((state) => {
      memberOf(state, key).admin = admin;
    });
  }

  setMemberWeight(key: MemberKey, weight: number): Promise<void> {
    return this.change((state) => {
      memberOf(state, key).weight = weight;
    });
  }
}

function clusterOf(state: DesiredState, name: string): DesiredState['clusters'][string] {
  const cluster = state.clusters[name];
  if (!cluster) throw new Error(`the desired state has no cluster "${name}"`);
  return cluster;
}

function memberOf(state: DesiredState, key: MemberKey): DesiredState['members'][MemberKey] {
  const member = state.members[key];
  if (!member) throw new Error(`the desired state has no member "${key}"`);
  return member;
}
