// A drain's figures in words that say what they rest on: the bound sessions Dayshift's own proxy saw, or,
// through Apache or HAProxy (which count no sessions), the requests the load balancer sent the target.
import { formatDuration } from '../config/units.js';
import type { DrainProgress } from './plane.js';

/** What the drain still holds, e.g. "0 in flight, 2 session(s) left, oldest idle 3s, 0 tunnel(s)". */
export function drainFigures(p: DrainProgress): string {
  if (p.basis === 'sessions') {
    return `${p.inFlight} in flight, ${p.sessions ?? 0} session(s) left, oldest idle ${formatDuration(p.oldestIdleMs ?? 0)}, ${p.tunnels} tunnel(s)`;
  }
  return `${p.inFlight} in flight, no new request for ${formatDuration(p.lastRequestMs ?? 0)} by the load balancer's count (drained after ${formatDuration(p.idleMs)})`;
}

/** The end of a drain, for a release step's detail. */
export function drainOutcome(p: DrainProgress): string {
  if (p.reason === 'deadline') return `deadline reached with ${drainFigures(p)}`;
  if (p.basis === 'sessions') return 'drained: nothing in flight, no bound session active';
  return `drained: nothing in flight, and the load balancer sent no new request for ${formatDuration(p.lastRequestMs ?? 0)} (it counts no sessions: the idle window stands for them)`;
}
