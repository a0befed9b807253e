// CPU time of one process, from /proc/PID/stat: utime + stime count every thread of the process (live
// ones and those that have exited), so HAProxy's threads and Node's GC and libuv threads are included.
// On a machine where the load generator competes for the same cores, a proxy's CPU time per request is
// the figure that compares proxies fairly; req/s depends on how the cores were shared.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of the stat figures (`getconf CLK_TCK`, read once). */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Microseconds of CPU (user + system) that process `pid` has used so far, at the kernel's tick resolution. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may itself hold spaces or ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of proc(5); fields[0] is field 3.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / TICKS_PER_SECOND;
}

/**
 * Runs `load` and returns its result with the CPU µs `pid` spent meanwhile (undefined without a pid);
 * several pids (a main process and its workers) are added up.
 */
export async function withCpu<T>(
  pid: number | number[] | undefined,
  load: () => Promise<T>,
): Promise<{ result: T; cpuUs: number | undefined }> {
  const pids = pid === undefined ? [] : [pid].flat();
  const total = () => pids.reduce((n, p) => n + cpuMicros(p), 0);
  const before = total();
  const result = await load();
  return { result, cpuUs: pid === undefined ? undefined : total() - before };
}
