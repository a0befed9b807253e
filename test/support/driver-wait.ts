// Waiting for a cluster to have no request in flight through a bare driver that can count them (Apache:
// busy, HAProxy: scur), for driver tests; Dayshift itself waits through ControlPlane.waitDrained.
import type { Driver } from '../../src/drivers/driver.js';
import { DriverUnsupportedError } from '../../src/drivers/errors.js';

export interface IdleWait {
  /** Give up after this long; resolves with idle=false then. */
  timeoutMs: number;
  /** Poll interval. */
  intervalMs?: number;
  /** Called with the in-flight count after each poll (progress display). */
  onPoll?: (inFlight: number) => void;
}

/** Polls status() until every member of `cluster` has 0 requests in flight, or the timeout passes. */
export async function waitUntilIdle(
  driver: Driver,
  cluster: string,
  wait: IdleWait,
): Promise<{ idle: boolean; inFlight: number }> {
  if (!driver.capabilities.has('in-flight'))
    throw new DriverUnsupportedError({ driver: driver.name, what: 'count requests in flight' });
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    const status = await driver.status();
    const found = status.clusters.find((c) => c.name === cluster);
    if (!found) throw new Error(`unknown cluster "${cluster}"`);
    const inFlight = found.members.reduce((sum, m) => sum + m.inFlight, 0);
    wait.onPoll?.(inFlight);
    if (inFlight === 0) return { idle: true, inFlight };
    if (Date.now() >= deadline) return { idle: false, inFlight };
    await new Promise((resolve) => setTimeout(resolve, wait.intervalMs ?? 250));
  }
}
