// ACME with workers: the main process orders and renews certificates and answers for the challenges,
// but the workers do the handshakes and serve /.well-known/acme-challenge/. The main's certificate
// table forwards each change to every worker's own table, and keeps what a new worker must start with.
import { CertificateTable, type IssuedCertificate } from '../tls/certificates.js';

/** One change to a certificate table, as sent to the workers. */
export type CertificateChange =
  | { op: 'install'; certificate: IssuedCertificate }
  | { op: 'remove'; site: string }
  | { op: 'retain'; site: string; hosts: string[] }
  | { op: 'http-challenge'; token: string; keyAuthorization?: string }
  | { op: 'alpn-challenge'; host: string; certificate?: { cert: string; key: string } };

/** Applies a change the main sent to a worker's table. */
export function applyCertificateChange(table: CertificateTable, change: CertificateChange): void {
  switch (change.op) {
    case 'install':
      return table.install(change.certificate);
    case 'remove':
      return table.remove(change.site);
    case 'retain':
      return table.retain(change.site, change.hosts);
    case 'http-challenge':
      if (change.keyAuthorization === undefined) table.removeHttpChallenge(change.token);
      else table.addHttpChallenge(change.token, change.keyAuthorization);
      return;
    case 'alpn-challenge':
      if (change.certificate === undefined) table.removeAlpnChallenge(change.host);
      else table.addAlpnChallenge(change.host, change.certificate);
      return;
  }
}

export class SharedCertificateTable extends CertificateTable {
  /** Set by the worker pool: sends a change to every worker, resolving when all have confirmed it. */
  forward: (change: CertificateChange) => Promise<void> = () => Promise.resolve();
  private pending: Promise<void> = Promise.resolve();
  private readonly httpChallenges = new Map<string, string>();
  private readonly alpnChallenges = new Map<string, { cert: string; key: string }>();

  /** Inside install(), which removes the site's previous certificate itself (so do the workers'). */
  private installing = false;

  override install(certificate: IssuedCertificate): void {
    this.installing = true;
    try {
      super.install(certificate);
    } finally {
      this.installing = false;
    }
    this.send({ op: 'install', certificate });
  }

  override remove(site: string): void {
    super.remove(site);
    if (!this.installing) this.send({ op: 'remove', site });
  }

  override retain(site: string, hosts: string[]): void {
    super.retain(site, hosts);
    this.send({ op: 'retain', site, hosts });
  }

  override addHttpChallenge(token: string, keyAuthorization: string): void {
    super.addHttpChallenge(token, keyAuthorization);
    this.httpChallenges.set(token, keyAuthorization);
    this.send({ op: 'http-challenge', token, keyAuthorization });
  }

  override removeHttpChallenge(token: string): void {
    super.removeHttpChallenge(token);
    this.httpChallenges.delete(token);
    this.send({ op: 'http-challenge', token });
  }

  override addAlpnChallenge(host: string, certificate: { cert: string; key: string }): void {
    super.addAlpnChallenge(host, certificate);
    this.alpnChallenges.set(host.toLowerCase(), certificate);
    this.send({ op: 'alpn-challenge', host, certificate });
  }

  override removeAlpnChallenge(host: string): void {
    super.removeAlpnChallenge(host);
    this.alpnChallenges.delete(host.toLowerCase());
    this.send({ op: 'alpn-challenge', host });
  }

  override synced(): Promise<void> {
    return this.pending;
  }

  /** What a worker that starts now needs: the certificates in force and the challenges pending. */
  changesToStart(): CertificateChange[] {
    return [
      ...this.sites().map((site): CertificateChange => ({ op: 'install', certificate: this.certificate(site)! })),
      ...[...this.httpChallenges].map(([token, keyAuthorization]): CertificateChange => ({
        op: 'http-challenge',
        token,
        keyAuthorization,
      })),
      ...[...this.alpnChallenges].map(([host, certificate]): CertificateChange => ({
        op: 'alpn-challenge',
        host,
        certificate,
      })),
    ];
  }

  private send(change: CertificateChange): void {
    const sent = this.forward(change);
    this.pending = Promise.all([this.pending, sent]).then(() => undefined);
  }
}
