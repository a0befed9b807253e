import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/atomic-file.js';

let root: string;
let count = 0;
/** A fresh, empty directory per test, so that "no temp file left" can be checked by listing it. */
const freshDir = async () => {
  const dir = join(root, String(++count));
  await mkdir(dir);
  return dir;
};
const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

/** Runs `body` with the process umask set to `mask`, then restores it. */
async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(previous);
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dayshift-atomic-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  test('creates a file, then replaces it by rename: a reader of the old file keeps the old content whole', async () => {
    const dir = await freshDir();
    const path = join(dir, 'state.json');
    await writeFileAtomic(path, 'old content');
    assert.equal(await readFile(path, 'utf8'), 'old content');

    const reader = await open(path, 'r');
    try {
      await writeFileAtomic(path, Buffer.from('new'));
      assert.equal(await readFile(path, 'utf8'), 'new');
      // Rewritten in place, the open file would now read "new" or a truncated mix.
      assert.equal((await reader.readFile()).toString('utf8'), 'old content');
    } finally {
      await reader.close();
    }
    assert.deepEqual(await readdir(dir), ['state.json']);
  });

  test('a rename onto a directory fails, leaves the directory as it was and removes the temp file', async () => {
    const dir = await freshDir();
    const target = join(dir, 'target');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'kept');
    await assert.rejects(writeFileAtomic(target, 'data'), (err: NodeJS.ErrnoException) =>
      ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(err.code ?? ''),
    );
    assert.deepEqual(await readdir(dir), ['target']);
    assert.equal(await readFile(join(target, 'inside'), 'utf8'), 'kept');
  });

  test('a missing directory fails with ENOENT and creates nothing', async () => {
    const dir = await freshDir();
    await assert.rejects(writeFileAtomic(join(dir, 'missing', 'file'), 'data'), { code: 'ENOENT' });
    assert.deepEqual(await readdir(dir), []);
  });

  test('a new file without a mode gets the default mode less the umask', async () => {
    const path = join(await freshDir(), 'new');
    await withUmask(0o027, () => writeFileAtomic(path, 'x'));
    assert.equal(await modeOf(path), 0o640);
  });

  test('an existing file keeps its mode when none is given', async () => {
    const path = join(await freshDir(), 'haproxy.state');
    await writeFile(path, 'old');
    await chmod(path, 0o640);
    await withUmask(0o022, () => writeFileAtomic(path, 'new'));
    assert.equal(await modeOf(path), 0o640);
    assert.equal(await readFile(path, 'utf8'), 'new');
  });

  test('a given mode is set exactly, over the existing mode and regardless of the umask', async () => {
    const dir = await freshDir();
    const existing = join(dir, 'existing');
    await writeFile(existing, 'old');
    await chmod(existing, 0o644);
    await writeFileAtomic(existing, 'new', { mode: 0o600 });
    assert.equal(await modeOf(existing), 0o600);

    const created = join(dir, 'created');
    await withUmask(0o077, () => writeFileAtomic(created, 'x', { mode: 0o644 }));
    assert.equal(await modeOf(created), 0o644);
  });

  test('concurrent writers to one path never leave a torn file, and readers never see one', async () => {
    const dir = await freshDir();
    const path = join(dir, 'contended');
    const size = 256 * 1024;
    // Each writer's content is one byte value repeated: a mix of two writers, or a partial write, shows.
    const payloads = Array.from({ length: 16 }, (_, i) => Buffer.alloc(size, 0x41 + i));
    const whole = (content: Buffer) =>
      content.length === size &&
      content.every((b) => b === content[0]) &&
      content[0] >= 0x41 &&
      content[0] < 0x41 + payloads.length;
    await writeFileAtomic(path, Buffer.alloc(size, 0x41));

    let writing = true;
    const reads: Promise<number> = (async () => {
      let n = 0;
      while (writing) {
        const content = await readFile(path);
        assert.ok(
          whole(content),
          `a reader saw ${content.length} bytes starting ${content.subarray(0, 8).toString('latin1')}`,
        );
        n++;
      }
      return n;
    })();
    try {
      await Promise.all(payloads.map((p) => writeFileAtomic(path, p)));
    } finally {
      writing = false;
    }
    assert.ok((await reads) > 0);
    assert.ok(whole(await readFile(path)));
    assert.deepEqual(await readdir(dir), ['contended']);
  });
});
