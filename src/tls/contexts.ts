// The certificates the https listeners present: the default (listen.tls) with the protocol settings
// (config `tls`), and each site's by SNI (exact host names, then `*.x` by suffix). Reading a file can
// fail; it happens before anything changes, so a bad reload leaves the running certificates in place.
import { constants as cryptoConstants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import type { LoadedConfig } from '../config/load.js';
import { siteTlsFiles, type TlsSettings } from '../config/schema.js';
import { messageOf } from '../errors.js';

/** A certificate and its key, as files named in the config. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

/** Reads a certificate or key file, with an error that names the config key and the file. */
function readPem(loaded: LoadedConfig, file: string, key: string): Buffer {
  const path = resolve(loaded.baseDir, file);
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${key}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`, {
      cause: error,
    });
  }
}

/** A certificate and key read and checked to make a secure context; `where` names them in errors. */
export function certificateMaterial(
  loaded: LoadedConfig,
  pair: CertificateFiles,
  where: string,
): { cert: Buffer; key: Buffer } {
  const material = {
    cert: readPem(loaded, pair.cert, `${where}.cert`),
    key: readPem(loaded, pair.key, `${where}.key`),
  };
  try {
    tls.createSecureContext(material);
  } catch (error) {
    throw new Error(`${where}: certificate or key not usable: ${messageOf(error)}`, { cause: error });
  }
  return material;
}

/**
 * The https listeners' protocol settings (config `tls`). sessionIdContext is fixed so that a session
 * from one instance resumes on another (Node's default is a hash of the command line).
 */
function tlsServerOptions(settings: TlsSettings): tls.SecureContextOptions {
  return {
    minVersion: settings.min_version,
    ...(settings.ciphers ? { ciphers: settings.ciphers } : {}),
    ...(settings.ecdh_curve ? { ecdhCurve: settings.ecdh_curve } : {}),
    ...(settings.session_tickets ? {} : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
    sessionIdContext: 'dayshift',
  };
}

/** The default certificate (listen.tls) and the protocol settings, as the https listeners have them. */
export function listenerContext(loaded: LoadedConfig): tls.SecureContextOptions {
  const files = loaded.config.listen.tls;
  return {
    ...tlsServerOptions(loaded.config.tls),
    ...(files ? certificateMaterial(loaded, files, 'listen.tls') : {}),
  };
}

/** The certificate files of a config, as the file watcher follows them. */
export function certificateFiles(loaded: LoadedConfig): { where: string; site?: string; pair: CertificateFiles }[] {
  const listenTls = loaded.config.listen.tls;
  return [
    ...(listenTls ? [{ where: 'listen.tls', pair: listenTls }] : []),
    ...Object.entries(loaded.config.sites).flatMap(([site, config]) => {
      const pair = siteTlsFiles(config);
      return pair ? [{ where: `sites.${site}.tls`, site, pair }] : [];
    }),
  ];
}

/** The sites' certificates by SNI: exact host → context, `*.x` → context by suffix; and each site's, to replace it. */
export class SiteContexts {
  private readonly exact = new Map<string, SecureContext>();
  private readonly wildcard = new Map<string, SecureContext>();
  private readonly bySite = new Map<string, SecureContext>();

  /** Reads every site's certificate files (throws, naming the file, when one cannot be used). */
  constructor(loaded: LoadedConfig) {
    for (const [name, site] of Object.entries(loaded.config.sites)) {
      const files = siteTlsFiles(site);
      if (!files) continue;
      const context = tls.createSecureContext(certificateMaterial(loaded, files, `sites.${name}.tls`));
      this.bySite.set(name, context);
      for (const host of site.hosts) {
        const h = host.toLowerCase();
        if (h.startsWith('*.')) this.wildcard.set(h.slice(1), context);
        else if (h !== '*') this.exact.set(h, context);
      }
    }
  }

  /** The context for an SNI server name (lower case), if a site has one. */
  lookup(name: string): SecureContext | undefined {
    const dot = name.indexOf('.');
    return this.exact.get(name) ?? (dot > 0 ? this.wildcard.get(name.slice(dot)) : undefined);
  }

  /** A site's certificate files changed: its new context replaces the old one for all its hosts. */
  replace(site: string, next: SecureContext): void {
    const old = this.bySite.get(site);
    this.bySite.set(site, next);
    for (const map of [this.exact, this.wildcard])
      for (const [host, context] of map) if (context === old) map.set(host, next);
  }
}
