// The Apache httpd 2.4 driver: applies Dayshift traffic states to the members of one balancer (the public
// one) through the balancer-manager. Dayshift states map onto httpd's member flags (docs/drivers.md):
// ready = no flag, draining = N (Drain: only sticky sessions), disabled = D (or S), standby = H; weight =
// loadfactor. httpd knows no clusters: apply() gives each member the stricter of its own state and its
// cluster's (diff.ts). httpd answers 200 even to a change it ignored, so every change is read back from
// `?xml=1` and an unapplied change throws.
import type { ApacheDriverConfig } from '../../config/driver-schema.js';
import type { ClusterConfig } from '../../config/schema.js';
import type { AdminState, Health, DesiredState } from '../../model.js';
import {
  BalancerManagerClient,
  hasFlag,
  type Balancer,
  type Worker,
  type WorkerChange,
  type WorkerFlag,
} from './balancer-manager.js';
import { BalancerApiError } from './../errors.js';
import { applyStateDiff, checkWeights, repairDrift } from '../diff.js';
import type { Driver, DriverCapability, DriverStatus, MemberStatus } from '../driver.js';
import { DriverUnsupportedError } from '../errors.js';
import {
  clusterStatuses,
  matchMembers,
  normalizeUrl,
  plannedMembers,
  type Matched,
  type PlannedMember,
} from '../members.js';
import { RequestCounts } from '../request-counts.js';
import { Serial } from '../../serial.js';

/** httpd's accepted loadfactor range (w_lf); values outside it are ignored silently by httpd. */
const LOADFACTOR_MIN = 1;
export const LOADFACTOR_MAX = 100;

type Flags = Partial<Record<WorkerFlag, boolean>>;

interface Planned {
  balancer: Balancer;
  matched: Matched<Worker>;
}

export class ApacheDriver implements Driver {
  readonly name = 'apache' as const;
  readonly capabilities: ReadonlySet<DriverCapability> = new Set<DriverCapability>([
    'cluster-traffic',
    'cluster-weight',
    'member-state',
    'member-weight',
    'in-flight',
  ]);
  private readonly client: BalancerManagerClient;
  private readonly planned: PlannedMember[];
  private readonly serial = new Serial();
  private readonly counts = new RequestCounts();

  constructor(
    private readonly options: ApacheDriverConfig,
    clusters: Record<string, ClusterConfig>,
  ) {
    this.client = new BalancerManagerClient(options.url, options.timeout, options.host);
    this.planned = plannedMembers(clusters);
  }

  /** Desired state → the member changes that differ from `previous` (all of them at start). */
  apply(next: DesiredState, previous: DesiredState | undefined): Promise<void> {
    return applyStateDiff(this, next, previous);
  }

  repair(state: DesiredState): Promise<string[]> {
    return repairDrift(this, state);
  }

  setMemberState(cluster: string, member: string, state: AdminState): Promise<void> {
    return this.serial.run(async () => {
      const plan = await this.plan();
      const worker = this.memberWorker(plan, cluster, member);
      await this.applyChanges(
        plan,
        [{ worker, flags: this.adminFlags(state) }],
        `set member ${cluster}/${member} ${state}`,
      );
    });
  }

  check(next: DesiredState): void {
    checkWeights(this, next, {
      min: LOADFACTOR_MIN,
      max: LOADFACTOR_MAX,
      what: "httpd's loadfactor (to send a member nothing, use `dayshift disable`)",
    });
  }

  setMemberWeight(cluster: string, member: string, weight: number): Promise<void> {
    if (!Number.isInteger(weight) || weight < LOADFACTOR_MIN || weight > LOADFACTOR_MAX) {
      return Promise.reject(
        new DriverUnsupportedError({
          driver: 'apache',
          what: `set weight ${weight}: httpd's loadfactor is ${LOADFACTOR_MIN} to ${LOADFACTOR_MAX} (use state disabled for no traffic)`,
        }),
      );
    }
    return this.serial.run(async () => {
      const plan = await this.plan();
      const worker = this.memberWorker(plan, cluster, member);
      await this.applyChanges(
        plan,
        [{ worker, loadfactor: weight }],
        `set member ${cluster}/${member} weight ${weight}`,
      );
    });
  }

  async status(): Promise<DriverStatus> {
    const [plan, persists] = await Promise.all([this.plan(), this.client.persists()]);
    const warnings: string[] = [];
    if (persists === false) {
      warnings.push(
        'BalancerPersist is off: balancer-manager changes are lost on a graceful restart (add "BalancerPersist On" to httpd.conf)',
      );
    } else if (persists === undefined) {
      warnings.push(
        'cannot tell whether BalancerPersist is on (httpd older than 2.4.71?): without it, changes are lost on a graceful restart',
      );
    }
    for (const { planned } of plan.matched.pairs.filter((p) => p.found === undefined)) {
      warnings.push(
        `member ${planned.cluster}/${planned.id} (${this.describe(planned)}) is not a member of balancer://${plan.balancer.name}`,
      );
    }
    for (const w of plan.matched.unclaimed) {
      warnings.push(`balancer://${plan.balancer.name} member ${w.name} belongs to no Dayshift cluster`);
    }
    const now = Date.now();
    const clusters = clusterStatuses(plan.matched, (planned, worker) => ({
      ...memberStatus(planned, worker),
      requests: worker.elected,
      lastRequestMs: this.counts.observe(worker.name, worker.elected, now),
    }));
    return { driver: 'apache', clusters, warnings };
  }

  async close(): Promise<void> {
    await this.serial.idle();
  }

  private async plan(): Promise<Planned> {
    const balancers = await this.client.balancers();
    const balancer = balancers.find((b) => b.name === this.options.balancer);
    if (!balancer) {
      const names = balancers.map((b) => b.name).join(', ') || '(none)';
      throw new BalancerApiError(
        `${this.client.url}${this.options.host ? ` (Host ${this.options.host})` : ''} has no balancer "${this.options.balancer}"; it has: ${names} (driver.balancer). ` +
          `A balancer-manager sees only the balancers of its own server or VirtualHost: if <Proxy balancer://${this.options.balancer}> is inside a <VirtualHost>, ` +
          'move it out to the server level (ProxyPass in the VirtualHost can still use it), or put <Location /balancer-manager> in that VirtualHost ' +
          'and set driver.url to its address and driver.host to its ServerName',
      );
    }
    const matched =
      this.options.match === 'route'
        ? matchMembers(
            this.planned,
            balancer.workers,
            (p) => p.route,
            (w) => w.route,
          )
        : matchMembers(
            this.planned,
            balancer.workers,
            (p) => normalizeUrl(p.url),
            (w) => normalizeUrl(w.name),
          );
    return { balancer, matched };
  }

  private describe(p: PlannedMember): string {
    return this.options.match === 'route' ? `route ${p.route ?? '(none)'}` : p.url;
  }

  private memberWorker(plan: Planned, cluster: string, member: string): Worker {
    const pair = plan.matched.pairs.find((p) => p.planned.cluster === cluster && p.planned.id === member);
    if (!pair) throw new Error(`unknown member "${cluster}/${member}"`);
    if (!pair.found)
      throw new BalancerApiError(
        `member ${cluster}/${member} (${this.describe(pair.planned)}) is not in balancer://${plan.balancer.name}`,
      );
    return pair.found;
  }

  private adminFlags(state: AdminState): Flags {
    const disabled = this.options.disabled_flag;
    switch (state) {
      case 'ready':
        return { D: false, S: false, N: false, H: false };
      case 'draining':
        return { D: false, S: false, H: false, N: true };
      case 'disabled':
        return { D: disabled === 'D', S: disabled === 'S', N: false, H: false };
      case 'standby':
        return { D: false, S: false, N: false, H: true };
    }
  }

  private async applyChanges(
    plan: Planned,
    changes: ({ worker: Worker } & WorkerChange)[],
    what: string,
  ): Promise<void> {
    for (const { worker, flags, loadfactor } of changes) {
      if ((flags === undefined || Object.keys(flags).length === 0) && loadfactor === undefined) continue;
      await this.client.update(plan.balancer, worker.name, {
        ...(flags ? { flags } : {}),
        ...(loadfactor === undefined ? {} : { loadfactor }),
      });
    }
    const after = await this.client.balancers();
    const balancer = after.find((b) => b.name === plan.balancer.name);
    const failed: string[] = [];
    for (const { worker, flags, loadfactor } of changes) {
      const now = balancer?.workers.find((w) => w.name === worker.name);
      if (!now) {
        failed.push(`${worker.name} has gone`);
        continue;
      }
      const wrong = Object.entries(flags ?? {}).filter(([flag, on]) => hasFlag(now, flag as WorkerFlag) !== on);
      if (wrong.length > 0)
        failed.push(
          `${worker.name} status is "${now.status.join(' ')}", expected ${wrong.map(([f, on]) => `${f}=${on ? 1 : 0}`).join(' ')}`,
        );
      if (loadfactor !== undefined && Math.abs(now.loadfactor - loadfactor) > 0.005)
        failed.push(`${worker.name} loadfactor is ${now.loadfactor}, expected ${loadfactor}`);
    }
    if (failed.length > 0) {
      throw new BalancerApiError(
        `httpd did not apply "${what}": ${failed.join('; ')}. httpd ignores changes silently when the nonce is wrong or the Referer host differs from the server name (error log AH10187)`,
      );
    }
  }
}

function isOut(worker: Worker): boolean {
  return hasFlag(worker, 'D') || hasFlag(worker, 'S');
}

function adminState(worker: Worker): AdminState {
  if (isOut(worker)) return 'disabled';
  if (hasFlag(worker, 'N')) return 'draining';
  if (hasFlag(worker, 'H')) return 'standby';
  return 'ready';
}

function health(worker: Worker): Health {
  if (worker.status.includes('Err') || worker.status.includes('HcFl')) return 'down';
  return worker.status.includes('Ok') ? 'up' : 'unknown';
}

function memberStatus(planned: PlannedMember, worker: Worker): MemberStatus {
  return {
    id: planned.id,
    url: planned.url,
    ...(worker.route ? { route: worker.route } : {}),
    admin: adminState(worker),
    health: health(worker),
    weight: worker.loadfactor,
    inFlight: worker.busy,
  };
}
