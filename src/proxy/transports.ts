// Member transports by URL scheme. The forwarder never names a protocol: it asks this registry, so the
// AJP transport (src/proxy/ajp/) plugs in with one registerTransport('ajp:', …) call.
import type { MemberConfig } from '../config/schema.js';
import type { Transport } from './transport.js';
import { createHttpTransport } from './http-transport.js';

export interface TransportSettings {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  poolIdle: number;
  poolMax: number;
}

export type TransportFactory = (url: URL, member: MemberConfig, settings: TransportSettings) => Transport;

const factories = new Map<string, TransportFactory>([
  ['http:', createHttpTransport],
  ['https:', createHttpTransport],
]);

/** Makes `protocol` (with its colon, as URL.protocol gives it: "ajp:") usable in member URLs. */
export function registerTransport(protocol: string, factory: TransportFactory): void {
  factories.set(protocol, factory);
}

export function createTransport(member: MemberConfig, settings: TransportSettings): Transport {
  const url = new URL(member.url);
  const factory = factories.get(url.protocol);
  if (!factory) throw new Error(`no transport for ${url.protocol} members (${member.url})`);
  return factory(url, member, settings);
}
