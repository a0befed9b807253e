// Opens the store the configuration names: the embedded file store under state_dir (the default) or etcd.
import { isAbsolute, resolve } from 'node:path';
import type { DayshiftConfig } from '../config/schema.js';
import type { EtcdStoreConfig } from '../config/store-schema.js';
import { EtcdStore } from './etcd.js';
import { FileStore } from './file.js';
import type { Store } from './store.js';

/** The file store's directory: state_dir itself (it keeps its kv/ and locks/ there), as the control plane opens it. */
export function fileStoreDir(config: Pick<DayshiftConfig, 'state_dir'>, baseDir: string): string {
  return resolve(baseDir, config.state_dir);
}

/** `baseDir` is the config file's directory: relative paths (state_dir, TLS files) are resolved against it. */
export async function openStore(config: Pick<DayshiftConfig, 'state_dir' | 'store'>, baseDir: string): Promise<Store> {
  const store = config.store ?? { type: 'file' as const };
  if (store.type === 'file') return FileStore.open(fileStoreDir(config, baseDir));
  return openEtcdStore(store, baseDir);
}

export function openEtcdStore(store: EtcdStoreConfig, baseDir: string): Promise<EtcdStore> {
  const path = (file: string | undefined) => (file === undefined || isAbsolute(file) ? file : resolve(baseDir, file));
  return EtcdStore.open({
    endpoints: store.endpoints,
    prefix: store.prefix,
    ...(store.tls ? { tls: { ca: path(store.tls.ca), cert: path(store.tls.cert), key: path(store.tls.key) } } : {}),
    ...(store.auth ? { auth: store.auth } : {}),
    dialTimeoutMs: store.dial_timeout,
    requestTimeoutMs: store.request_timeout,
    ...(store.lease_ttl !== undefined ? { leaseTtlSeconds: Math.ceil(store.lease_ttl / 1000) } : {}),
  });
}
