// The deadlines drains were started with. Each fires once when it passes, as long as the drain that
// owns it goes on; the control plane then closes the target's open tunnels and audits it. They live in
// the desired state, so they survive a restart and every instance sharing the store closes its own.
import { splitMemberKey, type MemberKey, type DesiredState, type DrainDeadline } from '../model.js';
import { formatTarget, type Target } from './targets.js';

export interface OwnedDeadline {
  target: Target;
  deadline: DrainDeadline;
}

/** setTimeout's longest delay; a later deadline is scheduled again when it runs out. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The draining targets of a state that have a deadline of their own. */
export function ownedDeadlines(state: DesiredState): OwnedDeadline[] {
  const owned: OwnedDeadline[] = [];
  for (const [cluster, desired] of Object.entries(state.clusters)) {
    if (desired.traffic === 'draining' && desired.drainDeadline)
      owned.push({ target: { kind: 'cluster', cluster }, deadline: desired.drainDeadline });
  }
  for (const [key, desired] of Object.entries(state.members)) {
    if (desired.admin !== 'draining' || !desired.drainDeadline) continue;
    const [cluster, member] = splitMemberKey(key as MemberKey);
    owned.push({ target: { kind: 'member', cluster, member, key: key as MemberKey }, deadline: desired.drainDeadline });
  }
  return owned;
}

export class DrainDeadlines {
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; owned: OwnedDeadline }>();
  private closed = false;
  /** Deadlines that have fired (each acts once, though its drain stays in the state): true when they closed tunnels. */
  private readonly fired = new Map<string, boolean>();

  constructor(private readonly onDeadline: (owned: OwnedDeadline) => void) {}

  /** Schedules the deadlines of the state's drains and cancels those whose drain ended or changed. */
  sync(state: DesiredState): void {
    if (this.closed) return;
    const wanted = new Map(ownedDeadlines(state).map((owned) => [keyOf(owned.target, owned.deadline.at), owned]));
    const now = Date.now();
    for (const [key, { timer, owned }] of this.timers) {
      if (wanted.has(key)) continue;
      clearTimeout(timer);
      this.timers.delete(key);
      // The drain ended at or after its deadline, before the timer ran (a reader saw the deadline pass
      // and moved on): the deadline still acts.
      if (Date.parse(owned.deadline.at) <= now) this.fire(key, owned);
    }
    for (const key of this.fired.keys()) if (!wanted.has(key)) this.fired.delete(key);
    for (const [key, owned] of wanted) if (!this.timers.has(key) && !this.fired.has(key)) this.schedule(key, owned);
  }

  /** Records that this deadline closed tunnels: the drain ended by its deadline, though it is idle now. */
  closedTunnels({ target, deadline }: OwnedDeadline): void {
    const key = keyOf(target, deadline.at);
    if (this.fired.has(key)) this.fired.set(key, true);
  }

  /** Whether the target's deadline `at` (ISO) has closed tunnels. */
  hasClosedTunnels(target: Target, at: string): boolean {
    return this.fired.get(keyOf(target, at)) === true;
  }

  /** Stops every timer; later syncs schedule nothing. */
  close(): void {
    this.closed = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private schedule(key: string, owned: OwnedDeadline): void {
    const at = Date.parse(owned.deadline.at);
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        // Early: the delay was capped, or the timer ran a moment before the wall clock reached `at`.
        if (Date.now() < at) return this.schedule(key, owned);
        this.fire(key, owned);
      },
      Math.min(Math.max(0, at - Date.now()), MAX_DELAY_MS),
    );
    // A pending deadline does not keep the process alive; the plane closes its timers on stop.
    timer.unref();
    this.timers.set(key, { timer, owned });
  }

  private fire(key: string, owned: OwnedDeadline): void {
    this.fired.set(key, false);
    this.onDeadline(owned);
  }
}

function keyOf(target: Target, at: string): string {
  return `${formatTarget(target)} ${at}`;
}
