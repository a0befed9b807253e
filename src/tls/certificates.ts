// The certificates Dayshift got by ACME, as the proxy reads them: host → TLS context for the SNI
// callback, and the challenges being answered right now (http-01 tokens, tls-alpn-01 certificates).
// The ACME manager (acme.ts) writes here; the proxy only reads.
import { X509Certificate } from 'node:crypto';
import tls, { type SecureContext } from 'node:tls';

/** Where http-01 challenges are asked for (RFC 8555 §8.3). */
export const HTTP01_PREFIX = '/.well-known/acme-challenge/';
/** The ALPN protocol of the tls-alpn-01 challenge (RFC 8737). */
export const ACME_TLS_PROTOCOL = 'acme-tls/1';

/** One site's certificate in force. */
export interface IssuedCertificate {
  site: string;
  hosts: string[];
  /** PEM: the leaf, then the intermediates (the full chain is served). */
  chain: string;
  key: string;
  notBefore: Date;
  notAfter: Date;
  issuer: string;
}

/** What status, the dashboard and /metrics show of a site's ACME certificate. */
export interface CertificateReport {
  site: string;
  hosts: string[];
  /** Expiry of the certificate in force (absent until one is issued). */
  notAfter?: string;
  issuer?: string;
  /** When renewal starts (notAfter - acme.renew_before). */
  renewAt?: string;
  /** The last failed attempt's error, and when the next one is due. */
  lastError?: string;
  retryAt?: string;
}

/** Reads validity and issuer from a PEM chain's first certificate. */
export function describeChain(chain: string): { notBefore: Date; notAfter: Date; issuer: string } {
  const leaf = new X509Certificate(chain);
  const issuer = /CN=([^\n]+)/.exec(leaf.issuer)?.[1] ?? leaf.issuer;
  return { notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo), issuer };
}

export class CertificateTable {
  private readonly byHost = new Map<string, SecureContext>();
  private readonly bySite = new Map<string, { certificate: IssuedCertificate; context: SecureContext }>();
  /** http-01: token → key authorization. */
  private readonly tokens = new Map<string, string>();
  /** tls-alpn-01: host → the challenge certificate's context. */
  private readonly alpn = new Map<string, SecureContext>();
  /** Sockets that asked for acme-tls/1 on a host with a challenge pending: the SNI callback serves the challenge. */
  private readonly challenged = new WeakMap<object, SecureContext>();

  /** Puts a site's certificate in force for its hosts (replacing the previous one). */
  install(certificate: IssuedCertificate): void {
    const context = tls.createSecureContext({ cert: certificate.chain, key: certificate.key });
    this.remove(certificate.site);
    this.bySite.set(certificate.site, { certificate, context });
    for (const host of certificate.hosts) this.byHost.set(host.toLowerCase(), context);
  }

  remove(site: string): void {
    const old = this.bySite.get(site);
    if (!old) return;
    this.bySite.delete(site);
    for (const host of old.certificate.hosts) if (this.byHost.get(host) === old.context) this.byHost.delete(host);
  }

  /** Stops serving a site's certificate for hosts the site no longer has (after a reload). */
  retain(site: string, hosts: string[]): void {
    const entry = this.bySite.get(site);
    if (!entry) return;
    for (const host of entry.certificate.hosts)
      if (!hosts.includes(host) && this.byHost.get(host) === entry.context) this.byHost.delete(host);
  }

  certificate(site: string): IssuedCertificate | undefined {
    return this.bySite.get(site)?.certificate;
  }

  sites(): string[] {
    return [...this.bySite.keys()];
  }

  /** The context for a TLS handshake: a pending tls-alpn-01 challenge on this socket, else the host's certificate. */
  context(socket: object, host: string): SecureContext | undefined {
    return this.challenged.get(socket) ?? this.byHost.get(host);
  }

  addHttpChallenge(token: string, keyAuthorization: string): void {
    this.tokens.set(token, keyAuthorization);
  }

  removeHttpChallenge(token: string): void {
    this.tokens.delete(token);
  }

  /**
   * Answers an http-01 challenge request, before any routing; false when the request is not one
   * (cheap when none is pending: one size check).
   */
  answerHttp(
    req: { url?: string | undefined },
    res: { writeHead(status: number, headers: Record<string, string>): unknown; end(body: string): unknown },
  ): boolean {
    if (this.tokens.size === 0 || !req.url?.startsWith(HTTP01_PREFIX)) return false;
    const answer = this.tokens.get(req.url.slice(HTTP01_PREFIX.length));
    if (answer === undefined) return false;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(answer)) });
    res.end(answer);
    return true;
  }

  addAlpnChallenge(host: string, certificate: { cert: string; key: string }): void {
    this.alpn.set(host.toLowerCase(), tls.createSecureContext(certificate));
  }

  removeAlpnChallenge(host: string): void {
    this.alpn.delete(host.toLowerCase());
  }

  /**
   * Resolves when every change so far is in force where the handshakes happen: here at once; with
   * workers, once each has confirmed it (src/workers/shared-certificates.ts). A challenge is awaited
   * before the CA is told to validate it.
   */
  synced(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * ALPN selection on the https listener. Node calls it before the SNI callback, with the TLS socket as
   * `this`: a client asking for acme-tls/1 on a host with a pending challenge gets it, and its socket
   * is marked so that context() serves the challenge certificate. Anyone else gets one of `served`.
   */
  selectProtocol(socket: object, servername: string, offered: string[], served: readonly string[]): string | undefined {
    if (this.alpn.size > 0 && offered.includes(ACME_TLS_PROTOCOL)) {
      const challenge = this.alpn.get(servername.toLowerCase());
      if (challenge) {
        this.challenged.set(socket, challenge);
        return ACME_TLS_PROTOCOL;
      }
    }
    return served.find((p) => offered.includes(p));
  }
}
