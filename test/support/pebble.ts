// Debian's pebble, a real RFC 8555 CA for tests, with pebble-challtestsrv as its DNS server (every name
// resolves to 127.0.0.1). Pebble validates http-01 on `httpPort` and tls-alpn-01 on `tlsPort`: the test
// points them at Dayshift's listeners. Loopback ports chosen at run time, own temp dir, stopped by PID.
// Validation is real (no PEBBLE_VA_ALWAYS_VALID); only the random validation delay and the random
// nonce rejections are turned off, to keep the tests quick and deterministic.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from '../../src/ports.js';
import { makeTestCertificates } from './etcd.js';
import { requirePeer } from './peers.js';
import { Foreground, waitFor } from './process.js';

export interface PebbleOptions {
  /** Where pebble checks http-01 (Dayshift's http listener port). */
  httpPort: number;
  /** Where pebble checks tls-alpn-01 (Dayshift's https listener port). */
  tlsPort: number;
}

export class Pebble {
  private pebble: Foreground | undefined;
  private dns: Foreground | undefined;

  private constructor(
    private readonly binaries: { pebble: string; challtestsrv: string },
    readonly dir: string,
    /** PEM file of the CA behind pebble's own HTTPS certificate: Dayshift's acme.ca_file. */
    readonly caFile: string,
    private readonly ports: { api: number; management: number; dns: number; dnsManagement: number },
  ) {}

  /** Prepares pebble (config, certificates, DNS); `start: false` leaves the CA down until start(). */
  static async create(t: TestContext, options: PebbleOptions, start = true): Promise<Pebble | undefined> {
    const pebble = requirePeer(t, 'pebble', 'pebble');
    const challtestsrv = requirePeer(t, 'pebble-challtestsrv', 'pebble');
    const openssl = requirePeer(t, 'openssl', 'openssl');
    if (!pebble || !challtestsrv || !openssl) return undefined;
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-pebble-'));
    const certs = await makeTestCertificates(openssl, dir);
    const ports = {
      api: await freePort(),
      management: await freePort(),
      dns: await freePort(),
      dnsManagement: await freePort(),
    };
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${ports.api}`,
        managementListenAddress: `127.0.0.1:${ports.management}`,
        certificate: certs.serverCert,
        privateKey: certs.serverKey,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    };
    await writeFile(join(dir, 'pebble.json'), JSON.stringify(config));
    const instance = new Pebble({ pebble, challtestsrv }, dir, certs.ca, ports);
    instance.dns = new Foreground(
      challtestsrv,
      [
        '-defaultIPv4',
        '127.0.0.1',
        '-defaultIPv6',
        '',
        '-dns01',
        `127.0.0.1:${ports.dns}`,
        '-management',
        `127.0.0.1:${ports.dnsManagement}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
      ],
      dir,
    );
    if (start) {
      try {
        await instance.start();
      } catch (err) {
        await instance.stop();
        throw err;
      }
    }
    return instance;
  }

  get directory(): string {
    return `https://127.0.0.1:${this.ports.api}/dir`;
  }

  /** Starts (or restarts) the CA and waits until its directory answers. */
  async start(): Promise<void> {
    if (this.pebble?.running) return;
    const env = { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' };
    this.pebble = new Foreground(
      this.binaries.pebble,
      ['-config', join(this.dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${this.ports.dns}`],
      this.dir,
      env,
    );
    const pebble = this.pebble;
    await waitFor(
      `pebble's directory (${this.directory})\n${pebble.log}`,
      async () => ((await this.get(this.ports.api, '/dir')).includes('newOrder') ? true : undefined),
      30_000,
      100,
    );
  }

  /** The root that signs pebble's certificates (changes at each pebble start). */
  async root(): Promise<string> {
    return this.get(this.ports.management, '/roots/0');
  }

  get log(): string {
    return `${this.pebble?.log ?? ''}\n${this.dns?.log ?? ''}`;
  }

  async stop(): Promise<void> {
    await this.pebble?.stop();
    await this.dns?.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async get(port: number, path: string): Promise<string> {
    const ca = await readFile(this.caFile);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, ca, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${path}: ${res.statusCode} ${body}`)),
        );
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
      req.end();
    });
  }
}
