// Copies an installation's state from one store to another (`dayshift store migrate --from file --to etcd`).
// Nothing is overwritten: a key that already exists in the target with another value stops the
// migration before anything is written, and every copy is a create (compare-and-set on revision 0).
import { isDeepStrictEqual } from 'node:util';
import { INSTANCES_PREFIX } from '../observe/instances.js';
import type { Store } from './store.js';
import { MigrationConflictError } from './errors.js';

/** Keys that are not state: each running instance's live figures belong to the process that published them. */
export const EPHEMERAL_PREFIXES = [INSTANCES_PREFIX];

export interface MigrationResult {
  from: string;
  to: string;
  dryRun: boolean;
  /** Keys written to the target (or that would be, in a dry run). */
  copied: string[];
  /** Keys already in the target with the same value. */
  unchanged: string[];
  /** Live figures, not copied. */
  skipped: string[];
}

export async function migrateStore(
  from: Store,
  to: Store,
  options: { dryRun?: boolean } = {},
): Promise<MigrationResult> {
  const dryRun = options.dryRun ?? false;
  const source = await from.list('');
  const target = new Map((await to.list('')).map((item) => [item.key, item.value]));
  const result: MigrationResult = {
    from: from.description,
    to: to.description,
    dryRun,
    copied: [],
    unchanged: [],
    skipped: [],
  };
  const conflicts: string[] = [];
  const toCopy: { key: string; value: unknown }[] = [];
  for (const { key, value } of source) {
    if (EPHEMERAL_PREFIXES.some((prefix) => key.startsWith(prefix))) result.skipped.push(key);
    else if (!target.has(key)) toCopy.push({ key, value });
    else if (isDeepStrictEqual(target.get(key), value)) result.unchanged.push(key);
    else conflicts.push(key);
  }
  if (conflicts.length > 0) throw new MigrationConflictError({ keys: conflicts, to: to.description });
  for (const { key, value } of toCopy) {
    if (!dryRun) await to.put(key, value, { ifRevision: 0 });
    result.copied.push(key);
  }
  return result;
}
