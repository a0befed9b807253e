// Durations and sizes as operators write them: "2s", "500ms", "10m", "1h"; "16k", "8kb", "1m".
import { z } from 'zod';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses "2s", "1.5m", "250ms" to milliseconds; a bare number means seconds. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return text >= 0 ? text * 1000 : undefined;
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_MS[match[2] as keyof typeof DURATION_MS]);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

/** Schema for a duration; the parsed value is milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as 500ms, 2s, 5m or 1h, found ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const SIZE = /^(\d+)\s*(b|k|kb|m|mb|g|gb)?$/i;
const SIZE_BYTES: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};

/** Schema for a size in bytes: 8192, "16k", "1mb". */
export const size = z.union([z.string(), z.number().int().nonnegative()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const match = SIZE.exec(value.trim());
  if (!match) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as 8192, 16k or 1mb, found ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return Number(match[1]) * SIZE_BYTES[(match[2] ?? 'b').toLowerCase()]!;
});

/** "host:port" or ":port" or "port" → { host, port }. IPv6 as [::1]:8080. */
export function parseAddress(text: string | number): { host: string; port: number } | undefined {
  const value = String(text).trim();
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export const address = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const parsed = parseAddress(value);
  if (!parsed) {
    ctx.addIssue({
      code: 'custom',
      message: `expected host:port such as 127.0.0.1:8080, found ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return parsed;
});
