// `dayshift store migrate`: move an installation's state between the file store and etcd.
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, loadConfigFile } from '../config/load.js';
import { migrateStore, type MigrationResult } from '../store/migrate.js';
import { fileStoreDir, openEtcdStore } from '../store/open.js';
import { FileStore } from '../store/file.js';
import type { Store } from '../store/store.js';
import type { LoadedConfig } from '../config/load.js';
import { CliError, colour, emit, EXIT } from './output.js';

const KINDS = ['file', 'etcd'] as const;
type Kind = (typeof KINDS)[number];

interface MigrateOptions {
  config: string;
  from: string;
  to: string;
  dryRun?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const store = program
    .command('store')
    .description('the store that keeps desired state: file (one machine) or etcd (several instances)');
  store
    .command('migrate')
    .description('copy every key from one store to another, e.g. from the file store to etcd (nothing is overwritten)')
    .option('-c, --config <file>', 'configuration file (etcd settings from its store section)', DEFAULT_CONFIG_FILE)
    .requiredOption('--from <store>', 'store to copy from: file or etcd')
    .requiredOption('--to <store>', 'store to copy to: file or etcd')
    .option('--dry-run', 'show what would be copied, write nothing')
    .option('--json', 'print the result as JSON')
    .action(async (opts: MigrateOptions) => {
      const from = kind(opts.from, '--from');
      const to = kind(opts.to, '--to');
      if (from === to) throw new CliError(`--from and --to are both ${from}: nothing to migrate`, EXIT.usage);
      const loaded = await loadConfigFile(opts.config);
      const stores: Store[] = [];
      try {
        const source = await open(from, loaded);
        stores.push(source);
        const target = await open(to, loaded);
        stores.push(target);
        const result = await migrateStore(source, target, { dryRun: Boolean(opts.dryRun) });
        emit(Boolean(opts.json), result, human);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });
}

function kind(value: string, flag: string): Kind {
  if ((KINDS as readonly string[]).includes(value)) return value as Kind;
  throw new CliError(`${flag} must be one of: ${KINDS.join(', ')} (got "${value}")`, EXIT.usage);
}

async function open(which: Kind, { config, file, baseDir }: LoadedConfig): Promise<Store> {
  if (which === 'file') return FileStore.open(fileStoreDir(config, baseDir));
  if (config.store?.type !== 'etcd') {
    throw new CliError(
      `${file} has no etcd store: add "store: {type: etcd, endpoints: [http://host:2379], prefix: /dayshift/<name>/}"`,
      EXIT.usage,
    );
  }
  return openEtcdStore(config.store, baseDir);
}

function human(result: MigrationResult): string {
  const verb = result.dryRun ? 'would copy' : 'copied';
  const lines = [`${result.from} → ${result.to}${result.dryRun ? colour.yellow(' (dry run, nothing written)') : ''}`];
  for (const key of result.copied) lines.push(`  ${result.dryRun ? '+' : colour.green('+')} ${key}`);
  lines.push(
    `${verb} ${result.copied.length} key(s); ${result.unchanged.length} already there with the same value; ` +
      `${result.skipped.length} live figure(s) skipped`,
  );
  return lines.join('\n');
}
