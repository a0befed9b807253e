// Member transports by URL scheme. The forwarder never names a protocol: it asks this table.
import type { MemberConfig } from '../config/schema.js';
import type { Transport } from './member-transport.js';
import { ajpTransportFactory } from './ajp/transport.js';
import { createHttpTransport } from './http1/transport.js';

export interface TransportSettings {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  /** Bytes of a response head at most (limits.response_head). */
  responseHeadBytes: number;
  poolIdle: number;
  poolMax: number;
  /** Requests waiting for a connection at most, past poolMax (limits.queue). */
  queueMax: number;
  /** How long a request may wait for a connection (timeouts.queue). */
  queueTimeoutMs: number;
}

export type TransportFactory = (url: URL, member: MemberConfig, settings: TransportSettings) => Transport;

const factories = new Map<string, TransportFactory>([
  ['http:', createHttpTransport],
  ['https:', createHttpTransport],
  ['ajp:', ajpTransportFactory],
]);

/** Replaces the transport for a scheme ("http:"): the benchmark uses it to compare engines. */
export function registerTransport(protocol: string, factory: TransportFactory): void {
  factories.set(protocol, factory);
}

export function createTransport(member: MemberConfig, settings: TransportSettings): Transport {
  const url = new URL(member.url);
  const factory = factories.get(url.protocol);
  if (!factory) throw new Error(`no transport for ${url.protocol} members (${member.url})`);
  return factory(url, member, settings);
}
