// The systemd units in examples/systemd/ are what operators copy: systemd itself must accept them, and
// their socket names must be ones Dayshift serves.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import type { ListenerName } from '../src/socket-activation.js';
import { requirePeer } from './support/peers.js';

const UNITS = fileURLToPath(new URL('../../examples/systemd/', import.meta.url));
const NAMES: Record<ListenerName, true> = { http: true, https: true, admin: true, writer: true };

async function units(): Promise<Map<string, string>> {
  const files = (await readdir(UNITS)).filter((f) => f.endsWith('.service') || f.endsWith('.socket'));
  return new Map(
    await Promise.all(files.map(async (f) => [f, await readFile(join(UNITS, f), 'utf8')] as [string, string])),
  );
}

const values = (text: string, key: string) =>
  [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());

describe('examples/systemd', () => {
  test('systemd-analyze verify accepts every unit without a warning', async (t: TestContext) => {
    const analyze = requirePeer(t, 'systemd-analyze', 'systemd');
    if (!analyze) return;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-units-'));
    try {
      const all = await units();
      for (const [file, text] of all) {
        // The units run the installed `dayshift`; verify checks that ExecStart= names an executable.
        await writeFile(join(dir, file), text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      }
      const result = spawnSync(analyze, ['verify', ...[...all.keys()].map((f) => join(dir, f))], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('each socket carries a name Dayshift serves, and its service takes it', async () => {
    const all = await units();
    const sockets = [...all].filter(([file]) => file.endsWith('.socket'));
    assert.ok(sockets.length >= 3);
    for (const [file, text] of sockets) {
      const [name] = values(text, 'FileDescriptorName');
      assert.ok(name && name in NAMES, `${file}: FileDescriptorName=${name}`);
      const [service] = values(text, 'Service');
      const unit = all.get(service ?? '');
      assert.ok(unit, `${file}: Service=${service} is not shipped`);
      assert.ok(
        values(unit, 'Sockets').join(' ').split(/\s+/).includes(file),
        `${service} does not list ${file} in Sockets=`,
      );
    }
  });
});
