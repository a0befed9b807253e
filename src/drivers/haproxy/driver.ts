// The HAProxy 2.x driver: applies Dayshift traffic states to the servers of one backend (the public one)
// through the Runtime API. ready/draining/disabled = `set server B/S state ready|drain|maint`; weight =
// `set server B/S weight N`; in-flight = `show stat` scur; admin state and health are read back from
// `show servers state`. Runtime changes are lost on a reload unless they are saved to the
// server-state-file HAProxy loads at start (option state_file; docs/drivers.md).
import { writeFileAtomic } from '../../atomic-file.js';
import type { HaproxyDriverConfig } from '../../config/driver-schema.js';
import type { ClusterConfig } from '../../config/schema.js';
import { splitMemberKey, type AdminState, type Health, type MemberKey, type DesiredState } from '../../model.js';
import { applyStateDiff, checkWeights, repairDrift } from '../diff.js';
import type { Driver, DriverCapability, DriverStatus, MemberStatus } from '../driver.js';
import { DriverUnsupportedError } from '../errors.js';
import { clusterStatuses, matchMembers, plannedMembers, type Matched, type PlannedMember } from '../members.js';
import { parseServersState, parseStatCsv, RuntimeApiClient } from './runtime-api.js';
import { BalancerApiError } from './../errors.js';
import { RequestCounts } from '../request-counts.js';
import { Serial } from '../../serial.js';

/** HAProxy's weight range (`set server ... weight`). */
export const WEIGHT_MAX = 256;

/** srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited, configured, resolver and hostname maintenance; drain. */
const ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const ADMIN_DRAIN = 0x08 | 0x10;

interface Server {
  name: string;
  addr: string;
  port: string;
  fqdn: string;
  adminBits: number;
  opState: number;
  weight: number;
  /** From show stat: sessions on the server now (requests in flight in mode http). */
  scur: number;
  /** From show stat: sessions sent to the server since the worker started (one per HTTP request). */
  stot: number;
  backup: boolean;
}

export interface HaproxyDriverOptions extends HaproxyDriverConfig {
  /** state_file resolved against the config file's directory. */
  state_file?: string;
}

export class HaproxyDriver implements Driver {
  readonly name = 'haproxy' as const;
  readonly capabilities: ReadonlySet<DriverCapability> = new Set<DriverCapability>([
    'cluster-traffic',
    'cluster-weight',
    'member-state',
    'member-weight',
    'in-flight',
  ]);
  private readonly client: RuntimeApiClient;
  private readonly planned: PlannedMember[];
  private readonly serial = new Serial();
  private readonly counts = new RequestCounts();

  constructor(
    private readonly options: HaproxyDriverOptions,
    clusters: Record<string, ClusterConfig>,
  ) {
    const target =
      options.socket !== undefined
        ? { socket: options.socket }
        : { host: options.address!.host, port: options.address!.port };
    this.client = new RuntimeApiClient(target, options.timeout);
    this.planned = plannedMembers(clusters);
  }

  /** Desired state → the server changes that differ from `previous` (all of them at start). */
  apply(next: DesiredState, previous: DesiredState | undefined): Promise<void> {
    return applyStateDiff(this, next, previous);
  }

  /** A ready backup server reads back as standby: that is the ready it can be. */
  repair(state: DesiredState): Promise<string[]> {
    return repairDrift(this, state, (wanted, found) => wanted === found || (wanted === 'ready' && found === 'standby'));
  }

  setMemberState(cluster: string, member: string, state: AdminState): Promise<void> {
    return this.serial.run(async () => {
      const server = this.memberServer(await this.match(), cluster, member);
      if (state === 'standby') this.standbyAllowed(server, cluster, member);
      const haproxyState =
        state === 'ready' || state === 'standby' ? 'ready' : state === 'draining' ? 'drain' : 'maint';
      await this.client.change(`set server ${this.options.backend}/${server.name} state ${haproxyState}`);
      await this.verify([{ server: server.name, admin: state }], `set member ${cluster}/${member} ${state}`);
    });
  }

  async check(next: DesiredState): Promise<void> {
    checkWeights(this, next, { min: 0, max: WEIGHT_MAX, what: "HAProxy's weight" });
    // Every member meant to be standby, also in a cluster that is out now: refused at "live" would be too late.
    const standby = (Object.entries(next.members) as [MemberKey, DesiredState['members'][MemberKey]][]).filter(
      ([, m]) => m.admin === 'standby',
    );
    if (standby.length === 0) return;
    const matched = await this.match();
    for (const [key] of standby) {
      const [cluster, member] = splitMemberKey(key);
      this.standbyAllowed(this.memberServer(matched, cluster, member), cluster, member);
    }
  }

  setMemberWeight(cluster: string, member: string, weight: number): Promise<void> {
    if (!Number.isInteger(weight) || weight < 0 || weight > WEIGHT_MAX) {
      return Promise.reject(
        new DriverUnsupportedError({
          driver: 'haproxy',
          what: `set weight ${weight}: HAProxy weights are 0 to ${WEIGHT_MAX}`,
        }),
      );
    }
    return this.serial.run(async () => {
      const server = this.memberServer(await this.match(), cluster, member);
      await this.client.change(`set server ${this.options.backend}/${server.name} weight ${weight}`);
      await this.verify([{ server: server.name, weight }], `set member ${cluster}/${member} weight ${weight}`);
    });
  }

  async status(): Promise<DriverStatus> {
    const matched = await this.match();
    const warnings: string[] = [];
    if (this.options.state_file === undefined) {
      warnings.push('driver.state_file is not set: runtime changes are lost when HAProxy reloads');
    }
    for (const { planned } of matched.pairs.filter((p) => p.found === undefined)) {
      warnings.push(
        `member ${planned.cluster}/${planned.id} (${this.expected(planned)}) is not a server of backend ${this.options.backend}`,
      );
    }
    for (const s of matched.unclaimed)
      warnings.push(`backend ${this.options.backend} server ${s.name} belongs to no Dayshift cluster`);
    const now = Date.now();
    const clusters = clusterStatuses(matched, (planned, server) => ({
      ...memberStatus(planned, server),
      requests: server.stot,
      lastRequestMs: this.counts.observe(server.name, server.stot, now),
    }));
    return { driver: 'haproxy', clusters, warnings };
  }

  async close(): Promise<void> {
    await this.serial.idle();
  }

  private expected(p: PlannedMember): string {
    return this.options.match === 'name' ? `server ${serverName(p)}` : p.url;
  }

  private async servers(): Promise<Server[]> {
    const backend = this.options.backend;
    // `show stat PROXY 4 -1`: this backend's servers only (type 4), not every proxy of a large setup.
    const [stateText, statText] = await Promise.all([
      this.client.command(`show servers state ${backend}`),
      this.client.command(`show stat ${backend} 4 -1`),
    ]);
    if (!stateText.startsWith('1'))
      throw new BalancerApiError(
        `HAProxy at ${this.client.where}: show servers state ${backend}: ${stateText.trim()} (driver.backend)`,
      );
    const stats = new Map(
      parseStatCsv(statText)
        .filter((r) => r.pxname === backend)
        .map((r) => [r.svname, r]),
    );
    return parseServersState(stateText).map((r) => {
      const stat = stats.get(r.srv_name!);
      return {
        name: r.srv_name!,
        addr: r.srv_addr!,
        port: r.srv_port!,
        fqdn: r.srv_fqdn === '-' ? '' : (r.srv_fqdn ?? ''),
        adminBits: Number(r.srv_admin_state),
        opState: Number(r.srv_op_state),
        weight: Number(r.srv_uweight),
        scur: Number(stat?.scur ?? 0),
        stot: Number(stat?.stot ?? 0),
        backup: stat?.bck === '1',
      };
    });
  }

  private async match(): Promise<Matched<Server>> {
    const servers = await this.servers();
    if (this.options.match === 'name') return matchMembers(this.planned, servers, serverName, (s) => s.name);
    // By address: the member's host (an IP, or a name HAProxy resolved: srv_fqdn) and port.
    const byAddress = matchMembers(this.planned, servers, hostPort, (s) => `${s.addr}:${s.port}`);
    const pairs = byAddress.pairs.map((pair) =>
      pair.found
        ? pair
        : { ...pair, found: servers.find((s) => s.fqdn !== '' && `${s.fqdn}:${s.port}` === hostPort(pair.planned)) },
    );
    const claimed = new Set(pairs.map((p) => p.found));
    return { pairs, unclaimed: servers.filter((s) => !claimed.has(s)) };
  }

  /** Standby is HAProxy's `backup`, fixed in haproxy.cfg: only a backup server can be made ready (standby). */
  private standbyAllowed(server: Server, cluster: string, member: string): void {
    if (!server.backup)
      throw new DriverUnsupportedError({
        driver: 'haproxy',
        what: `make ${cluster}/${member} standby at run time (declare its server "backup" in haproxy.cfg)`,
      });
  }

  private memberServer(matched: Matched<Server>, cluster: string, member: string): Server {
    const pair = matched.pairs.find((p) => p.planned.cluster === cluster && p.planned.id === member);
    if (!pair) throw new Error(`unknown member "${cluster}/${member}"`);
    if (!pair.found)
      throw new BalancerApiError(
        `member ${cluster}/${member} (${this.expected(pair.planned)}) is not in backend ${this.options.backend}`,
      );
    return pair.found;
  }

  /** Reads the servers back and throws when a change did not take; then saves the state file. */
  private async verify(
    expected: { server: string; admin?: AdminState; weight?: number }[],
    what: string,
  ): Promise<void> {
    const servers = new Map((await this.servers()).map((s) => [s.name, s]));
    const failed = expected.flatMap((e) => {
      const s = servers.get(e.server);
      if (!s) return [`${e.server} has gone`];
      const problems: string[] = [];
      // A backup server that is ready reads back as standby: that is the ready it can be.
      const actual = adminState(s);
      const same = actual === e.admin || (e.admin === 'ready' && actual === 'standby');
      if (e.admin !== undefined && !same) problems.push(`${e.server} is ${actual}, expected ${e.admin}`);
      if (e.weight !== undefined && s.weight !== e.weight)
        problems.push(`${e.server} weight is ${s.weight}, expected ${e.weight}`);
      return problems;
    });
    if (failed.length > 0) throw new BalancerApiError(`HAProxy did not apply "${what}": ${failed.join('; ')}`);
    await this.saveState();
  }

  private async saveState(): Promise<void> {
    const file = this.options.state_file;
    if (file === undefined) return;
    const state = await this.client.command('show servers state');
    if (!state.startsWith('1'))
      throw new BalancerApiError(`cannot save server state: show servers state answered ${state.trim()}`);
    // Atomic, so a reload never loads half a file; durable, so HAProxy starting after a power cut does not
    // load an empty file and bring drained servers back into traffic. The file keeps the mode the operator
    // gave it (HAProxy may read it as another user).
    await writeFileAtomic(file, state);
  }
}

/** The server name `dayshift export haproxy` gives a member: its route, else CLUSTER-ID. */
export function serverName(p: Pick<PlannedMember, 'cluster' | 'id' | 'route'>): string {
  return p.route ?? `${p.cluster}-${p.id}`;
}

function hostPort(p: PlannedMember): string | undefined {
  try {
    const u = new URL(p.url);
    const port = u.port || ({ 'http:': '80', 'https:': '443' } as Record<string, string>)[u.protocol];
    return `${u.hostname.replace(/^\[|\]$/g, '')}:${port}`;
  } catch {
    return undefined;
  }
}

function adminState(s: Server): AdminState {
  if (s.adminBits & ADMIN_MAINT) return 'disabled';
  if (s.adminBits & ADMIN_DRAIN) return 'draining';
  return s.backup ? 'standby' : 'ready';
}

function health(s: Server): Health {
  // srv_op_state: 0 stopped (down), 1 starting, 2 running, 3 stopping.
  if (s.opState === 2) return 'up';
  if (s.opState === 0) return 'down';
  return 'unknown';
}

function memberStatus(planned: PlannedMember, s: Server): MemberStatus {
  return {
    id: planned.id,
    url: planned.url,
    ...(planned.route === undefined ? {} : { route: planned.route }),
    admin: adminState(s),
    health: health(s),
    weight: s.weight,
    inFlight: s.scur,
  };
}
