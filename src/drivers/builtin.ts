// The built-in proxy as a driver: applying desired state is one atomic snapshot swap.
import type { LoadedConfig } from '../config/load.js';
import type { SessionTracker } from '../control/session-tracker.js';
import { memberKey, memberId, type DesiredState } from '../model.js';
import type { ProxyHandle } from '../proxy/handle.js';
import type { ClusterStatus, Driver, DriverCapability, DriverStatus, StatusOptions } from './driver.js';

const CAPABILITIES: ReadonlySet<DriverCapability> = new Set<DriverCapability>([
  'cluster-traffic',
  'cluster-weight',
  'member-state',
  'member-weight',
  'sessions',
  'in-flight',
  'maintenance',
  'pause',
]);

export class BuiltinDriver implements Driver {
  readonly name = 'builtin' as const;
  readonly capabilities = CAPABILITIES;
  private state: DesiredState | undefined;

  constructor(
    private readonly proxy: ProxyHandle,
    private readonly config: () => LoadedConfig,
    private readonly sessions: SessionTracker,
  ) {}

  async apply(next: DesiredState): Promise<void> {
    await this.proxy.apply(this.config(), next);
    this.state = structuredClone(next);
  }

  async status(options: StatusOptions = {}): Promise<DriverStatus> {
    const { config } = this.config();
    const state = this.current();
    await this.proxy.refreshStats?.();
    const stats = new Map(this.proxy.stats().members.map((m) => [m.key, m]));
    const bound = this.sessions.byMember(Date.now(), options.sessionIdleMs ?? config.drain.session_idle);
    const clusters: ClusterStatus[] = Object.entries(config.clusters).map(([name, cluster]) => ({
      name,
      traffic: state.clusters[name]?.traffic ?? 'live',
      weight: state.clusters[name]?.weight ?? cluster.weight,
      members: cluster.members.map((member, i) => {
        const id = memberId(member.route, i);
        const key = memberKey(name, id);
        const live = stats.get(key);
        const sessions = bound.get(key);
        return {
          id,
          url: member.url,
          ...(member.route ? { route: member.route } : {}),
          admin: state.members[key]?.admin ?? member.state,
          health: live?.health ?? 'unknown',
          weight: state.members[key]?.weight ?? member.weight,
          inFlight: live?.inFlight ?? 0,
          boundSessions: sessions?.active ?? 0,
          oldestIdleMs: sessions?.oldestIdleMs ?? 0,
          openTunnels: live?.openTunnels ?? 0,
        };
      }),
    }));
    return { driver: 'builtin', clusters, warnings: [] };
  }

  async close(): Promise<void> {}

  private current(): DesiredState {
    if (!this.state) throw new Error('the built-in driver has no state applied yet');
    return structuredClone(this.state);
  }
}
