// Real peers (httpd, HAProxy, Tomcat, MariaDB, etcd, Chromium) are started by the tests themselves.
// On a developer machine without one, the test is skipped with a message; in CI a missing peer fails.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

const SEARCH = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of an executable, looked up on PATH and the sbin directories, or undefined. */
export function findExecutable(name: string, extraDirs: string[] = []): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of [...extraDirs, ...SEARCH]) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A peer looked up for a test: its path, or why the test is skipped. */
export type Peer = { path: string; skip: false } | { path: undefined; skip: string };

/**
 * Looks up a peer's executable. Missing, it gives the skip message outside CI and throws under CI=true,
 * so a missing peer can never make a test pass without running. `pkg` is the Debian package that
 * provides it, named in the message.
 */
export function findPeer(name: string, pkg: string, extraDirs: string[] = []): Peer {
  const path = findExecutable(name, extraDirs);
  if (path) return { path, skip: false };
  const message = `${name} not found: install the Debian package ${pkg} (apt-get install ${pkg}) to run this test`;
  if (process.env.CI === 'true') throw new Error(message);
  return { path: undefined, skip: message };
}

/** For one test: the executable's path, or undefined after skipping `t` (outside CI; throws in CI). */
export function requirePeer(t: TestContext, name: string, pkg: string, extraDirs: string[] = []): string | undefined {
  const peer = findPeer(name, pkg, extraDirs);
  if (peer.skip) t.skip(peer.skip);
  return peer.path;
}
