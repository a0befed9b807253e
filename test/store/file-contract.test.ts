import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { FileStore } from '../../src/store/file.js';
import { storeContract } from './store-contract.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

storeContract('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-file-store-'));
  dirs.push(dir);
  return { open: () => FileStore.open(dir), multiClient: false };
});
