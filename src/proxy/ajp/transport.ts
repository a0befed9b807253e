// The Transport for ajp:// members: turns an UpstreamRequest into an AJP13 Forward Request on a pooled
// connection. The proxy's transport table (src/proxy/transport-factory.ts) uses it for ajp:// members.
import type { Transport, UpstreamRequest, UpstreamResponse } from '../member-transport.js';
import { UpstreamError } from '../errors.js';
import type { TransportFactory, TransportSettings } from '../transport-factory.js';
import type { ForwardRequest } from './encoder.js';
import { AjpPool, type PoolStats } from './pool.js';
import { DEFAULT_PACKET_SIZE, MAX_PACKET_SIZE, MIN_PACKET_SIZE } from './protocol.js';
import { messageOf } from '../../errors.js';

export const DEFAULT_AJP_PORT = 8009;

export interface AjpTransportOptions {
  /** Tomcat's `secret` on the AJP connector (member.secret). */
  secret?: string;
  /** Must equal Tomcat's packetSize (member.packet_size); default 8192. */
  packetSize?: number;
  connectTimeoutMs?: number;
  /** From the request sent to the response headers; 0 = no limit (default). */
  firstByteTimeoutMs?: number;
  /** No bytes either way for this long fails the exchange; 0 = no limit (default). */
  idleTimeoutMs?: number;
  /** Connections at most (default 512); requests beyond wait for one. */
  maxConnections?: number;
  /** Requests waiting for a connection at most (default 1024); one more fails at once. */
  maxQueue?: number;
  /** How long a request may wait for a connection (default: connectTimeoutMs, as HAProxy). */
  queueTimeoutMs?: number;
  /** Idle connections kept (default 64). */
  maxIdle?: number;
  /** An idle connection unused this long is closed (default 60 s). */
  idleConnectionTimeoutMs?: number;
  /** How long a CPing may take before the connection counts as dead (default 1000 ms). */
  cpingTimeoutMs?: number;
  /**
   * Idle connections unused at least this long are CPinged before reuse (default 1000 ms; 0 = before every
   * reuse, as mod_proxy_ajp's ping=). A connection back from an exchange a moment ago is not stale; the
   * check costs a round trip (about a quarter of the throughput on loopback when done every time).
   */
  cpingAfterIdleMs?: number;
  /**
   * Extra req_attribute pairs per request. Tomcat answers 403 to names that are not well known
   * (AJP_*, JK_*) unless they match the connector's allowedRequestAttributesPattern.
   */
  attributes?: (request: UpstreamRequest) => [name: string, value: string][];
}

export class AjpTransport implements Transport {
  private readonly pool: AjpPool;
  private readonly packetSize: number;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly options: AjpTransportOptions = {},
  ) {
    this.packetSize = options.packetSize ?? DEFAULT_PACKET_SIZE;
    if (!Number.isInteger(this.packetSize) || this.packetSize < MIN_PACKET_SIZE || this.packetSize > MAX_PACKET_SIZE) {
      throw new RangeError(
        `AJP packet size must be an integer from ${MIN_PACKET_SIZE} to ${MAX_PACKET_SIZE}, got ${this.packetSize}`,
      );
    }
    this.pool = new AjpPool({
      host,
      port,
      packetSize: this.packetSize,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      maxConnections: options.maxConnections ?? 512,
      maxQueue: options.maxQueue ?? 1024,
      queueTimeoutMs: options.queueTimeoutMs ?? options.connectTimeoutMs ?? 5000,
      maxIdle: options.maxIdle ?? 64,
      idleConnectionTimeoutMs: options.idleConnectionTimeoutMs ?? 60_000,
      cpingTimeoutMs: options.cpingTimeoutMs ?? 1000,
      cpingAfterIdleMs: options.cpingAfterIdleMs ?? 1000,
    });
  }

  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    const { connection, reused } = await this.pool.acquire(request.signal);
    const body = request.body ? { stream: request.body, contentLength: request.contentLength } : null;
    return connection.request(
      this.forwardRequest(request),
      body,
      {
        reused,
        signal: request.signal,
        firstByteTimeoutMs: this.options.firstByteTimeoutMs ?? 0,
        idleTimeoutMs: this.options.idleTimeoutMs ?? 0,
      },
      (c, reusable) => this.pool.release(c, reusable),
    );
  }

  /** CPing → CPong on an idle or new connection: the connector answers, not merely a bound port. */
  async ping(timeoutMs: number): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    const { connection } = await this.pool.acquire(signal, false);
    try {
      await connection.ping(timeoutMs);
    } catch (err) {
      this.pool.release(connection, false);
      throw err instanceof UpstreamError
        ? err
        : new UpstreamError(`CPing failed: ${messageOf(err)}`, {
            phase: 'before-send',
            reusedConnection: true,
            cause: err,
          });
    }
    this.pool.release(connection, true);
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    this.pool.close();
    return Promise.resolve();
  }

  private forwardRequest(request: UpstreamRequest): ForwardRequest {
    const q = request.path.indexOf('?');
    const headers = request.headers.filter(([name]) => name !== 'content-length');
    // Tomcat learns the body length from Content-Length; without it, it asks chunk by chunk until empty.
    if (request.body && request.contentLength !== undefined)
      headers.push(['content-length', String(request.contentLength)]);
    const { client } = request;
    const tls = client.secure ? client.tls : undefined;
    const attributes: [string, string][] = [['AJP_REMOTE_PORT', String(client.port)]];
    if (tls?.protocol) attributes.push(['AJP_SSL_PROTOCOL', tls.protocol]);
    if (this.options.attributes) attributes.push(...this.options.attributes(request));
    return {
      method: request.method,
      protocol: 'HTTP/1.1',
      uri: q < 0 ? request.path : request.path.slice(0, q),
      queryString: q < 0 ? undefined : request.path.slice(q + 1),
      remoteAddr: client.address,
      remoteHost: client.address,
      serverName: client.serverName,
      serverPort: client.serverPort,
      isSsl: client.secure,
      headers,
      secret: this.options.secret,
      route: request.route,
      sslCert: tls?.clientCert,
      sslCipher: tls?.cipher,
      sslSession: tls?.sessionId,
      sslKeySize: tls?.keySize,
      attributes,
    };
  }
}

/** Options for one member: its own secret and packet_size, the proxy's timeouts and pool limits. */
export function ajpOptionsFromMember(
  member: { secret?: string; packet_size: number },
  settings: TransportSettings,
): AjpTransportOptions {
  return {
    secret: member.secret,
    packetSize: member.packet_size,
    connectTimeoutMs: settings.connectTimeoutMs,
    firstByteTimeoutMs: settings.firstByteTimeoutMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    maxConnections: settings.poolMax,
    maxQueue: settings.queueMax,
    queueTimeoutMs: settings.queueTimeoutMs,
    maxIdle: settings.poolIdle,
  };
}

/** Factory for `ajp://host[:port]` member URLs (port 8009 when omitted). */
export function createAjpTransport(url: URL, options: AjpTransportOptions = {}): AjpTransport {
  if (url.protocol !== 'ajp:') throw new TypeError(`not an ajp:// URL: ${url.href}`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new AjpTransport(host, url.port === '' ? DEFAULT_AJP_PORT : Number(url.port), options);
}

/** For the proxy's transport table (src/proxy/transport-factory.ts). */
export const ajpTransportFactory: TransportFactory = (url, member, settings) =>
  createAjpTransport(url, ajpOptionsFromMember(member, settings));
