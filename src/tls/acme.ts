// Certificates by ACME (RFC 8555) for sites with `tls: {acme: true}`: ordered from the CA in `acme`,
// kept in the store with the account key, renewed ahead of expiry, retried with backoff when the CA
// fails. Instances sharing an etcd store share the certificates: one orders a site's certificate under
// the store lock `acme-<site>`, the others take it from the store when it lands. Challenge answers go
// through the store too, so whichever instance the CA reaches can answer.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import tls from 'node:tls';
import acme from 'acme-client';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { siteUsesAcme, type DayshiftConfig } from '../config/schema.js';
import { Serial } from '../serial.js';
import type { Store, Unsubscribe } from '../store/store.js';
import { LockHeldError, StoreConflictError } from '../store/errors.js';
import {
  describeChain,
  type CertificateReport,
  type CertificateTable,
  type IssuedCertificate,
} from './certificates.js';
import { messageOf } from '../errors.js';

export const CERTIFICATES_PREFIX = 'acme/certificates/';
const ACCOUNTS_PREFIX = 'acme/accounts/';
const CHALLENGES_PREFIX = 'acme/challenges/';

/** A site's certificate as the store keeps it. */
export interface StoredCertificate {
  hosts: string[];
  chain: string;
  key: string;
  /** Which instance ordered it, and when. */
  orderedBy: string;
  orderedAt: string;
}

interface StoredAccount {
  directory: string;
  email: string;
  key: string;
  url?: string;
}

/** A challenge answer as shared through the store. */
type StoredChallenge =
  | { type: 'http-01'; token: string; keyAuthorization: string }
  | { type: 'tls-alpn-01'; host: string; cert: string; key: string };

export type ChallengeType = 'http-01' | 'tls-alpn-01';

/**
 * Retry after a failed order, doubling, at most an hour apart (never giving up): from 5 s when the CA
 * could not be reached (nothing counted against its rate limits), from a minute when it answered with
 * a refusal or a failed challenge (Let's Encrypt allows 5 failed validations per host and hour).
 */
const RETRY_UNREACHABLE_MS = 5000;
const RETRY_REFUSED_MS = 60_000;
const RETRY_MAX_MS = 3600_000;
/** Network errors that mean the CA was not reached. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'EPIPE',
]);
/** How long close() lets an order in flight finish. */
const CLOSE_WAIT_MS = 5000;
/** How long the CA's directory may take to answer. */
const DIRECTORY_TIMEOUT_MS = 10_000;
/** Waiting for another instance that holds the order lock. */
const LOCK_WAIT_MS = 2000;
/** The order lock outlives a stuck order at most this long. */
const LOCK_TTL_SECONDS = 300;
/** Timers re-check at least this often (setTimeout cannot wait a certificate's lifetime). */
const MAX_TIMER_MS = 24 * 3600_000;

export interface AcmeManagerOptions {
  store: Store;
  table: CertificateTable;
  logger: Logger;
  /** The config in force (a reload changes it; call refresh() then). */
  loaded: () => LoadedConfig;
  /** The challenges the listeners can answer, preferred first. */
  challenges: ChallengeType[];
  /** This instance, as the lock holder and in `orderedBy`. */
  instance: string;
}

interface SiteSchedule {
  timer?: NodeJS.Timeout;
  failures: number;
  lastError?: string;
  retryAt?: number;
}

/** The exact host names a site's certificate covers, sorted. */
export function acmeHosts(config: DayshiftConfig, site: string): string[] {
  return [...new Set(config.sites[site]!.hosts.map((h) => h.toLowerCase()))].sort();
}

/** When to renew: renew_before ahead of expiry, or at half the lifetime if that is shorter (short-lived certificates). */
export function renewalTime(certificate: { notBefore: Date; notAfter: Date }, renewBeforeMs: number): number {
  const lifetime = certificate.notAfter.getTime() - certificate.notBefore.getTime();
  return certificate.notAfter.getTime() - Math.min(renewBeforeMs, lifetime / 2);
}

export class AcmeManager {
  private readonly schedules = new Map<string, SiteSchedule>();
  /** One order at a time in this instance (account creation must not race). */
  private readonly orders = new Serial();
  private readonly unwatch: Unsubscribe[] = [];
  private closed = false;

  constructor(private readonly options: AcmeManagerOptions) {
    const settings = acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } };
    // A failed request fails the order, which retries with its own backoff (and is logged).
    settings.acmeSettings.retryMaxAttempts = 0;
    const caFile = options.loaded().config.acme?.ca_file;
    if (caFile) {
      // acme-client's HTTP client is one per process: its agent trusts the public roots and ca_file.
      const path = resolve(options.loaded().baseDir, caFile);
      acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, readFileSync(path, 'utf8')] });
    }
  }

  /**
   * Follows the store for other instances' certificates and challenges, and checks every ACME site in
   * the background: a stored certificate is put in force, a missing or due one ordered.
   */
  start(): void {
    const { store } = this.options;
    this.unwatch.push(
      store.watch(
        CERTIFICATES_PREFIX,
        (key) => this.schedule(key.slice(key.lastIndexOf(CERTIFICATES_PREFIX) + CERTIFICATES_PREFIX.length), 0),
        () => this.refresh(),
      ),
      store.watch(CHALLENGES_PREFIX, (key, value) => this.challengeChanged(key, value as StoredChallenge | undefined)),
    );
    for (const site of this.acmeSites()) this.schedule(site, 0);
  }

  /** After a reload: sites added, removed or renamed hosts. */
  refresh(): void {
    const config = this.options.loaded().config;
    const sites = new Set(this.acmeSites());
    for (const site of this.options.table.sites()) {
      if (sites.has(site)) this.options.table.retain(site, acmeHosts(config, site));
      else this.options.table.remove(site);
    }
    for (const [site, s] of this.schedules) {
      if (sites.has(site)) continue;
      clearTimeout(s.timer);
      this.schedules.delete(site);
    }
    for (const site of sites) this.schedule(site, 0);
  }

  /** Each ACME site's certificate, for status and metrics. */
  report(): CertificateReport[] {
    const config = this.options.loaded().config;
    return this.acmeSites().map((site) => {
      const cert = this.options.table.certificate(site);
      const s = this.schedules.get(site);
      return {
        site,
        hosts: acmeHosts(config, site),
        ...(cert
          ? {
              notAfter: cert.notAfter.toISOString(),
              issuer: cert.issuer,
              renewAt: new Date(renewalTime(cert, config.acme!.renew_before)).toISOString(),
            }
          : {}),
        ...(s?.lastError ? { lastError: s.lastError } : {}),
        ...(s?.retryAt ? { retryAt: new Date(s.retryAt).toISOString() } : {}),
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const u of this.unwatch) u();
    for (const s of this.schedules.values()) clearTimeout(s.timer);
    // An order in flight may finish (and store its certificate) if it is quick; shutdown does not wait longer.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.orders.idle(), new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private acmeSites(): string[] {
    const config = this.options.loaded().config;
    return Object.entries(config.sites)
      .filter(([, site]) => siteUsesAcme(site))
      .map(([name]) => name);
  }

  private scheduleOf(site: string): SiteSchedule {
    let s = this.schedules.get(site);
    if (!s) this.schedules.set(site, (s = { failures: 0 }));
    return s;
  }

  private schedule(site: string, delayMs: number): void {
    if (this.closed || !this.acmeSites().includes(site)) return;
    const s = this.scheduleOf(site);
    clearTimeout(s.timer);
    s.timer = setTimeout(() => void this.check(site), Math.max(0, Math.min(MAX_TIMER_MS, delayMs)));
    s.timer.unref();
  }

  /** Installs the stored certificate if it covers the site's hosts; returns when it is due for renewal (undefined: none usable). */
  private async loadStored(site: string): Promise<number | undefined> {
    const config = this.options.loaded().config;
    const stored = await this.options.store.get<StoredCertificate>(`${CERTIFICATES_PREFIX}${site}`);
    if (!stored || stored.value.hosts.join(' ') !== acmeHosts(config, site).join(' ')) return undefined;
    const info = describeChain(stored.value.chain);
    if (info.notAfter.getTime() <= Date.now()) return undefined;
    const current = this.options.table.certificate(site);
    if (current?.chain !== stored.value.chain) {
      this.options.table.install({
        site,
        hosts: stored.value.hosts,
        chain: stored.value.chain,
        key: stored.value.key,
        ...info,
      });
      this.options.logger.info(
        { site, hosts: stored.value.hosts, notAfter: info.notAfter.toISOString(), orderedBy: stored.value.orderedBy },
        'ACME certificate in force',
      );
    }
    return renewalTime(info, config.acme!.renew_before);
  }

  /** Makes sure the site has a current certificate, ordering one if needed; schedules the next check. */
  private async check(site: string): Promise<void> {
    if (this.closed) return;
    const s = this.scheduleOf(site);
    try {
      const renewAt = await this.loadStored(site);
      if (renewAt !== undefined && renewAt > Date.now()) {
        s.failures = 0;
        delete s.lastError;
        delete s.retryAt;
        this.schedule(site, renewAt - Date.now());
        return;
      }
      const outcome = await this.orders.run(() => this.orderUnderLock(site));
      if (outcome === 'elsewhere') this.schedule(site, LOCK_WAIT_MS);
      else this.schedule(site, 0);
    } catch (err) {
      if (this.closed) return;
      s.failures++;
      const first = UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? '')
        ? RETRY_UNREACHABLE_MS
        : RETRY_REFUSED_MS;
      const delay = Math.min(RETRY_MAX_MS, first * 2 ** (s.failures - 1));
      s.lastError = messageOf(err);
      s.retryAt = Date.now() + delay;
      this.options.logger.warn(
        { site, err, attempt: s.failures, retryInMs: delay, directory: this.options.loaded().config.acme?.directory },
        'could not get an ACME certificate; retrying',
      );
      this.schedule(site, delay);
    }
  }

  /** Orders the site's certificate if no other instance is doing so; 'elsewhere' when another holds the lock. */
  private async orderUnderLock(site: string): Promise<'ordered' | 'stored' | 'elsewhere'> {
    const { store, instance } = this.options;
    let lock;
    try {
      lock = await store.lock(`acme-${site}`, `${instance} ordering a certificate for site ${site}`, LOCK_TTL_SECONDS);
    } catch (err) {
      if (err instanceof LockHeldError) return 'elsewhere';
      throw err;
    }
    try {
      // Another instance may have stored it while this one waited for the lock.
      const renewAt = await this.loadStored(site);
      if (renewAt !== undefined && renewAt > Date.now()) return 'stored';
      const certificate = await this.order(site);
      const stored: StoredCertificate = {
        hosts: certificate.hosts,
        chain: certificate.chain,
        key: certificate.key,
        orderedBy: instance,
        orderedAt: new Date().toISOString(),
      };
      await store.put(`${CERTIFICATES_PREFIX}${site}`, stored);
      this.options.table.install(certificate);
      this.options.logger.info(
        { site, hosts: certificate.hosts, notAfter: certificate.notAfter.toISOString(), issuer: certificate.issuer },
        'ACME certificate issued',
      );
      return 'ordered';
    } finally {
      await lock.release();
    }
  }

  private async order(site: string): Promise<IssuedCertificate> {
    const config = this.options.loaded().config;
    const settings = config.acme!;
    const hosts = acmeHosts(config, site);
    await reachDirectory(settings.directory);
    const account = await this.account(settings.directory, settings.email);
    const client = new acme.Client({
      directoryUrl: settings.directory,
      accountKey: account.key,
      ...(account.url ? { accountUrl: account.url } : {}),
      // Polls for the CA's verdict: soon at first (a CA decides in seconds), then less often.
      backoffMin: 500,
      backoffMax: 10_000,
      backoffAttempts: 12,
    });
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: hosts[0]!, altNames: hosts },
      await acme.crypto.createPrivateEcdsaKey(),
    );
    this.options.logger.info({ site, hosts, directory: settings.directory }, 'ordering an ACME certificate');
    const chain = await client.auto({
      csr,
      email: settings.email,
      termsOfServiceAgreed: true,
      challengePriority: this.options.challenges,
      // The CA checks; a self-check from here would need the public DNS and routes of a real deployment.
      skipChallengeVerification: true,
      challengeCreateFn: (authz, challenge, keyAuthorization) =>
        this.publishChallenge(authz, challenge, keyAuthorization),
      challengeRemoveFn: (authz, challenge) => this.withdrawChallenge(authz.identifier.value, challenge),
    });
    if (!account.url) await this.saveAccountUrl(settings.directory, client.getAccountUrl());
    const info = describeChain(chain);
    return { site, hosts, chain, key: key.toString(), ...info };
  }

  private async publishChallenge(
    authz: acme.Authorization,
    challenge: { type: string; token: string },
    keyAuthorization: string,
  ): Promise<void> {
    const host = authz.identifier.value.toLowerCase();
    let value: StoredChallenge;
    if (challenge.type === 'http-01') {
      value = { type: 'http-01', token: challenge.token, keyAuthorization };
    } else if (challenge.type === 'tls-alpn-01') {
      const [key, cert] = await acme.crypto.createAlpnCertificate(
        authz,
        keyAuthorization,
        await acme.crypto.createPrivateEcdsaKey(),
      );
      value = { type: 'tls-alpn-01', host, cert: cert.toString(), key: key.toString() };
    } else {
      throw new Error(
        `the CA offered no challenge Dayshift answers for ${host} (got ${challenge.type}; answered: ${this.options.challenges.join(', ')})`,
      );
    }
    // Here at once (in every worker before the CA is told), and through the store for the other instances.
    this.challengeChanged(challengeKey(value), value);
    await this.options.table.synced();
    await this.options.store.put(challengeKey(value), value);
  }

  private async withdrawChallenge(host: string, challenge: { type: string; token: string }): Promise<void> {
    const key =
      challenge.type === 'http-01'
        ? `${CHALLENGES_PREFIX}http/${challenge.token}`
        : `${CHALLENGES_PREFIX}alpn/${host.toLowerCase()}`;
    this.challengeChanged(key, undefined);
    await this.options.store.delete(key);
  }

  private challengeChanged(key: string, value: StoredChallenge | undefined): void {
    const { table } = this.options;
    const name = key.slice(key.lastIndexOf('/') + 1);
    if (key.includes(`${CHALLENGES_PREFIX}http/`)) {
      if (value?.type === 'http-01') table.addHttpChallenge(value.token, value.keyAuthorization);
      else table.removeHttpChallenge(name);
    } else if (key.includes(`${CHALLENGES_PREFIX}alpn/`)) {
      if (value?.type === 'tls-alpn-01') table.addAlpnChallenge(value.host, { cert: value.cert, key: value.key });
      else table.removeAlpnChallenge(name);
    }
  }

  /** The account for this directory: from the store, or a new key stored before first use. */
  private async account(directory: string, email: string): Promise<StoredAccount> {
    const key = accountKey(directory);
    const stored = await this.options.store.get<StoredAccount>(key);
    if (stored && stored.value.email === email) return stored.value;
    const account: StoredAccount = { directory, email, key: (await acme.crypto.createPrivateEcdsaKey()).toString() };
    try {
      await this.options.store.put(key, account, { ifRevision: stored?.revision ?? 0 });
      return account;
    } catch (err) {
      // Another instance made one at the same time: use that.
      if (err instanceof StoreConflictError) return (await this.options.store.get<StoredAccount>(key))!.value;
      throw err;
    }
  }

  private async saveAccountUrl(directory: string, url: string): Promise<void> {
    const key = accountKey(directory);
    const stored = await this.options.store.get<StoredAccount>(key);
    if (stored && !stored.value.url)
      await this.options.store
        .put(key, { ...stored.value, url }, { ifRevision: stored.revision })
        .catch(() => undefined);
  }
}

/**
 * Fails with the network error when the CA's directory cannot be fetched. acme-client would report
 * it as a TypeError from inside its HTTP client, which tells an operator nothing.
 */
function reachDirectory(url: string): Promise<void> {
  const agent = (acme.axios.defaults.httpsAgent as https.Agent | undefined) ?? https.globalAgent;
  return new Promise((resolvePromise, reject) => {
    const fail = (err: NodeJS.ErrnoException) =>
      reject(
        Object.assign(new Error(`cannot reach the ACME directory ${url}: ${err.code ?? err.message}`, { cause: err }), {
          code: err.code,
        }),
      );
    const req = (url.startsWith('https:') ? https : http).get(
      url,
      { agent: url.startsWith('https:') ? agent : undefined, timeout: DIRECTORY_TIMEOUT_MS },
      (res) => {
        res.resume();
        if (res.statusCode === 200) resolvePromise();
        else reject(new Error(`the ACME directory ${url} answered ${res.statusCode}`));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', fail);
  });
}

function accountKey(directory: string): string {
  return `${ACCOUNTS_PREFIX}${createHash('sha256').update(directory).digest('hex').slice(0, 16)}`;
}

function challengeKey(value: StoredChallenge): string {
  return value.type === 'http-01'
    ? `${CHALLENGES_PREFIX}http/${value.token}`
    : `${CHALLENGES_PREFIX}alpn/${value.host}`;
}
