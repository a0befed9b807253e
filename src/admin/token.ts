// The admin API's bearer token: from admin.token_file, else DAYSHIFT_TOKEN, else generated on first start
// into <state_dir>/admin.token with mode 0600 (and its path printed so the operator can find it).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface AdminToken {
  value: string;
  /** Where it came from, for messages: a file path or "DAYSHIFT_TOKEN". */
  source: string;
  /** True when this start generated it. */
  generated: boolean;
}

export async function readTokenFile(path: string): Promise<string> {
  const value = (await readFile(path, 'utf8')).trim();
  if (value.length < 16) throw new Error(`admin token in ${path} is shorter than 16 characters`);
  return value;
}

export async function loadAdminToken(
  tokenFile: string | undefined,
  stateDir: string,
  baseDir: string,
): Promise<AdminToken> {
  if (tokenFile) {
    const path = resolve(baseDir, tokenFile);
    return { value: await readTokenFile(path), source: path, generated: false };
  }
  const fromEnv = process.env.DAYSHIFT_TOKEN;
  if (fromEnv) {
    if (fromEnv.length < 16)
      throw new Error(
        'DAYSHIFT_TOKEN is shorter than 16 characters: use a long random token (e.g. openssl rand -base64 24)',
      );
    return { value: fromEnv, source: 'DAYSHIFT_TOKEN', generated: false };
  }
  const path = join(stateDir, 'admin.token');
  try {
    return { value: await readTokenFile(path), source: path, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const value = randomBytes(24).toString('base64url');
  await writeFile(path, `${value}\n`, { mode: 0o600, flag: 'wx' });
  return { value, source: path, generated: true };
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
