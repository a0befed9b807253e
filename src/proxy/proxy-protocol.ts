// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header an L4 balancer (LVS,
// a cloud network load balancer, HAProxy in TCP mode) puts at the start of a connection to say whom the
// connection is really from. parseProxyHeader reads it, strictly; proxyHeader writes one for a member.
import { isIP, isIPv4, isIPv6 } from 'node:net';

/** One end of the original connection. */
export interface Endpoint {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export type ProxyHeader =
  /** More bytes are needed to tell. */
  | { kind: 'incomplete' }
  | { kind: 'malformed'; reason: string }
  /**
   * A whole header of `length` bytes. `source`/`destination` are absent for v1 UNKNOWN, v2 LOCAL (the
   * balancer's own health check) and v2 UNSPEC: the connection's own addresses then stand.
   */
  | { kind: 'header'; version: 1 | 2; length: number; source?: Endpoint; destination?: Endpoint };

/** v1's longest line ("PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF). */
export const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ');
export const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const V2_FIXED = 16;

const INCOMPLETE: ProxyHeader = { kind: 'incomplete' };
const malformed = (reason: string): ProxyHeader => ({ kind: 'malformed', reason });

/** Whether `data` agrees with `prefix` as far as both go. */
function agrees(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

/**
 * Reads a PROXY header at the start of `data` (all bytes received so far). A v2 header longer than
 * `maxLength` bytes is malformed. Anything that cannot begin a header is malformed at once, without
 * waiting for more bytes.
 */
export function parseProxyHeader(data: Buffer, maxLength: number): ProxyHeader {
  if (data.length === 0) return INCOMPLETE;
  if (data[0] === 0x50) return agrees(data, V1_PREFIX) ? parseV1(data) : malformed('not a PROXY protocol header');
  if (data[0] === 0x0d)
    return agrees(data, V2_SIGNATURE) ? parseV2(data, maxLength) : malformed('not a PROXY protocol header');
  return malformed('not a PROXY protocol header');
}

const PORT = /^(?:0|[1-9]\d{0,4})$/;

function parseV1(data: Buffer): ProxyHeader {
  const end = data.subarray(0, V1_MAX).indexOf('\r\n');
  if (end < 0)
    return data.length >= V1_MAX ? malformed(`v1 header without CRLF in its first ${V1_MAX} bytes`) : INCOMPLETE;
  const line = data.toString('latin1', 0, end);
  const length = end + 2;
  const fields = line.split(' ');
  // "PROXY UNKNOWN" may carry anything up to the CRLF: the receiver ignores it.
  if (fields[1] === 'UNKNOWN') return { kind: 'header', version: 1, length };
  if (fields.length !== 6) return malformed('v1 header: expected PROXY TCP4|TCP6 <src> <dst> <sport> <dport>');
  const [, protocol, src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const family = protocol === 'TCP4' ? 'IPv4' : protocol === 'TCP6' ? 'IPv6' : undefined;
  if (!family) return malformed(`v1 header: unknown protocol ${JSON.stringify(protocol)}`);
  const valid = family === 'IPv4' ? isIPv4 : isIPv6;
  if (!valid(src) || !valid(dst)) return malformed(`v1 header: addresses are not ${family}`);
  const ports = [sport, dport].map((p) => (PORT.test(p) ? Number(p) : NaN));
  if (!ports.every((p) => p <= 65535)) return malformed('v1 header: a port is not a number 0-65535');
  return {
    kind: 'header',
    version: 1,
    length,
    source: { address: family === 'IPv6' ? src.toLowerCase() : src, port: ports[0]!, family },
    destination: { address: family === 'IPv6' ? dst.toLowerCase() : dst, port: ports[1]!, family },
  };
}

function parseV2(data: Buffer, maxLength: number): ProxyHeader {
  if (data.length < V2_FIXED) return INCOMPLETE;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return malformed(`v2 header: version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) return malformed(`v2 header: unknown command ${command}`);
  const family = data[13]! >> 4;
  const transport = data[13]! & 0x0f;
  const length = V2_FIXED + data.readUInt16BE(14);
  if (length > maxLength) return malformed(`v2 header of ${length} bytes, more than the ${maxLength} allowed`);
  if (data.length < length) return INCOMPLETE;
  // LOCAL: the balancer speaking for itself (health checks); its address block, if any, is ignored.
  if (command === 0) return { kind: 'header', version: 2, length };
  if (family === 0) return { kind: 'header', version: 2, length };
  if (transport !== 1) return malformed('v2 header: only STREAM (TCP) connections are accepted');
  const body = data.subarray(V2_FIXED, length);
  // What follows the addresses is TLVs (ALPN, authority, a cloud's endpoint id…): skipped.
  if (family === 1) {
    if (body.length < 12) return malformed('v2 header: AF_INET address block shorter than 12 bytes');
    const ip = (at: number) => `${body[at]}.${body[at + 1]}.${body[at + 2]}.${body[at + 3]}`;
    return {
      kind: 'header',
      version: 2,
      length,
      source: { address: ip(0), port: body.readUInt16BE(8), family: 'IPv4' },
      destination: { address: ip(4), port: body.readUInt16BE(10), family: 'IPv4' },
    };
  }
  if (family === 2) {
    if (body.length < 36) return malformed('v2 header: AF_INET6 address block shorter than 36 bytes');
    return {
      kind: 'header',
      version: 2,
      length,
      source: { address: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(32), family: 'IPv6' },
      destination: { address: ipv6Text(body.subarray(16, 32)), port: body.readUInt16BE(34), family: 'IPv6' },
    };
  }
  return malformed(
    family === 3 ? 'v2 header: AF_UNIX addresses are not accepted' : `v2 header: unknown address family ${family}`,
  );
}

/** 16 bytes → the text form Node gives a socket's address (RFC 5952: lower case, longest zero run as ::). */
function ipv6Text(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // IPv4-mapped, as Node writes it: ::ffff:192.0.2.1.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff)
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestAt, bestLength] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLength).join(':')}`;
}

/**
 * The v1 or v2 PROXY header that tells a member about `source` → `destination` (TCP); without them
 * (a client address no longer known), v1 UNKNOWN or v2 AF_UNSPEC: the member uses the connection's own.
 */
export function proxyHeader(version: 'v1' | 'v2', source?: Endpoint, destination?: Endpoint): Buffer {
  if (!source || !destination)
    return version === 'v1'
      ? Buffer.from('PROXY UNKNOWN\r\n')
      : Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0x00, 0x00])]);
  // Both ends must be of one family: a mixed pair (an IPv6 client on an IPv4 listener) is written as v6.
  const six = source.family === 'IPv6' || destination.family === 'IPv6';
  const src = six ? asIPv6(source.address) : source.address;
  const dst = six ? asIPv6(destination.address) : destination.address;
  if (version === 'v1')
    return Buffer.from(`PROXY ${six ? 'TCP6' : 'TCP4'} ${src} ${dst} ${source.port} ${destination.port}\r\n`, 'latin1');
  const addresses = six ? 36 : 12;
  const header = Buffer.alloc(V2_FIXED + addresses);
  V2_SIGNATURE.copy(header);
  header[12] = 0x21; // version 2, PROXY
  header[13] = six ? 0x21 : 0x11; // AF_INET6 or AF_INET, STREAM
  header.writeUInt16BE(addresses, 14);
  if (six) {
    ipv6Bytes(src).copy(header, 16);
    ipv6Bytes(dst).copy(header, 32);
    header.writeUInt16BE(source.port, 48);
    header.writeUInt16BE(destination.port, 50);
  } else {
    Buffer.from(src.split('.').map(Number)).copy(header, 16);
    Buffer.from(dst.split('.').map(Number)).copy(header, 20);
    header.writeUInt16BE(source.port, 24);
    header.writeUInt16BE(destination.port, 26);
  }
  return header;
}

/** A client connection's two ends for proxyHeader; none when its address is not known (a socket already closed). */
export function clientEnds(
  address: string | undefined,
  port: number | undefined,
  serverAddress: string | undefined,
  serverPort: number | undefined,
): [Endpoint, Endpoint] | [] {
  if (!address || !isIP(address) || port === undefined) return [];
  const family = (ip: string) => (isIPv6(ip) ? 'IPv6' : 'IPv4');
  const server = serverAddress && isIP(serverAddress) ? serverAddress : isIPv6(address) ? '::' : '0.0.0.0';
  return [
    { address, port, family: family(address) },
    { address: server, port: serverPort ?? 0, family: family(server) },
  ];
}

/** The header of a connection the proxy makes for itself (a health check): v1 UNKNOWN, v2 LOCAL. */
export function localHeader(version: 'v1' | 'v2'): Buffer {
  return version === 'v1'
    ? Buffer.from('PROXY UNKNOWN\r\n')
    : Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
}

function asIPv6(address: string): string {
  return isIPv4(address) ? `::ffff:${address}` : address;
}

/** An IPv6 address's 16 bytes (an embedded dotted IPv4 tail allowed, as in ::ffff:192.0.2.1). */
function ipv6Bytes(address: string): Buffer {
  const bytes = Buffer.alloc(16);
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail.push(
      ...text
        .slice(lastColon + 1)
        .split('.')
        .map(Number),
    );
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(bytes, 12);
  return bytes;
}
