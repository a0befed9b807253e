// Release windows: the days and hours (in a time zone) a release may start in.
import type { WindowsConfig, Weekday } from '../config/release-schema.js';

interface LocalTime {
  day: Weekday;
  /** Minutes since local midnight. */
  minute: number;
}

function localTime(at: Date, timeZone: string | undefined): LocalTime {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = get('weekday').toLowerCase().slice(0, 3) as Weekday;
  return { day, minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

function toMinutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

export function inWindow(windows: WindowsConfig, at: Date = new Date()): boolean {
  const local = localTime(at, windows.timezone);
  return windows.allow.some(
    (w) => w.days.includes(local.day) && local.minute >= toMinutes(w.from) && local.minute < toMinutes(w.to),
  );
}

/** The next time (to the minute) a window opens, within a week; undefined if none does. */
export function nextWindowStart(windows: WindowsConfig, from: Date = new Date()): Date | undefined {
  const start = new Date(from);
  start.setUTCSeconds(0, 0);
  for (let i = 1; i <= 8 * 24 * 60; i++) {
    const candidate = new Date(start.getTime() + i * 60_000);
    if (inWindow(windows, candidate)) return candidate;
  }
  return undefined;
}

export function describeWindows(windows: WindowsConfig): string {
  const zone = windows.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  return windows.allow.map((w) => `${w.days.join(',')} ${w.from}-${w.to}`).join('; ') + ` (${zone})`;
}
