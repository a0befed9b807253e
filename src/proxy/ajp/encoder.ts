// Proxy → container packets: Forward Request, request body chunks, CPing.
// Strings go out as latin1, the byte-per-character form Node gives HTTP header values and targets.
import {
  ATTR,
  METHOD_CODES,
  METHOD_STORED,
  NULL_STRING_LENGTH,
  PACKET_HEADER_SIZE,
  PREFIX_CPING,
  PREFIX_FORWARD_REQUEST,
  REQUEST_HEADER_CODES,
  TO_CONTAINER_MAGIC,
} from './protocol.js';
import { AjpEncodeError } from '../errors.js';

/** Everything one Forward Request carries. Header names are lower-case. */
export interface ForwardRequest {
  method: string;
  protocol: string;
  /** Path only, without the query: the query goes in `queryString`. */
  uri: string;
  remoteAddr: string;
  remoteHost: string | null;
  serverName: string;
  serverPort: number;
  isSsl: boolean;
  headers: [name: string, value: string][];
  secret?: string;
  /** Without the leading "?". */
  queryString?: string;
  route?: string;
  sslCert?: string;
  sslCipher?: string;
  sslSession?: string;
  sslKeySize?: number;
  /** req_attribute pairs (AJP_REMOTE_PORT, AJP_SSL_PROTOCOL, …); Tomcat refuses unknown names with 403. */
  attributes: [name: string, value: string][];
}

/** Writes into one packet-sized buffer; overflowing it is an AjpEncodeError, not a silent truncation. */
class PacketWriter {
  private readonly buf: Buffer;
  private pos = PACKET_HEADER_SIZE;

  constructor(private readonly packetSize: number) {
    this.buf = Buffer.allocUnsafe(packetSize);
  }

  private room(n: number): void {
    if (this.pos + n > this.packetSize) {
      throw new AjpEncodeError(
        `the request does not fit in one AJP packet of ${this.packetSize} bytes (headers too large; raise packet_size on the member and packetSize on the Tomcat connector)`,
      );
    }
  }

  byte(value: number): void {
    this.room(1);
    this.buf[this.pos++] = value;
  }

  int(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff)
      throw new AjpEncodeError(`AJP integer out of range: ${value}`);
    this.room(2);
    this.buf.writeUInt16BE(value, this.pos);
    this.pos += 2;
  }

  string(value: string | null): void {
    if (value === null) {
      this.int(NULL_STRING_LENGTH);
      return;
    }
    const length = Buffer.byteLength(value, 'latin1');
    if (length >= NULL_STRING_LENGTH) throw new AjpEncodeError('AJP string too long');
    this.int(length);
    this.room(length + 1);
    this.buf.write(value, this.pos, 'latin1');
    this.pos += length;
    this.buf[this.pos++] = 0;
  }

  finish(): Buffer {
    this.buf.writeUInt16BE(TO_CONTAINER_MAGIC, 0);
    this.buf.writeUInt16BE(this.pos - PACKET_HEADER_SIZE, 2);
    return this.buf.subarray(0, this.pos);
  }
}

export function encodeForwardRequest(request: ForwardRequest, packetSize: number): Buffer {
  const w = new PacketWriter(packetSize);
  w.byte(PREFIX_FORWARD_REQUEST);
  const methodCode = METHOD_CODES.get(request.method);
  w.byte(methodCode ?? METHOD_STORED);
  w.string(request.protocol);
  w.string(request.uri);
  w.string(request.remoteAddr);
  w.string(request.remoteHost);
  w.string(request.serverName);
  w.int(request.serverPort);
  w.byte(request.isSsl ? 1 : 0);
  w.int(request.headers.length);
  for (const [name, value] of request.headers) {
    const code = REQUEST_HEADER_CODES.get(name);
    if (code !== undefined) w.int(code);
    else {
      // A string name starting with byte 0xA0 would be read back as a header code.
      if (name.charCodeAt(0) === 0xa0)
        throw new AjpEncodeError(`header name cannot be sent over AJP: ${JSON.stringify(name)}`);
      w.string(name);
    }
    w.string(value);
  }
  const attribute = (code: number, value: string | undefined): void => {
    if (value === undefined) return;
    w.byte(code);
    w.string(value);
  };
  if (methodCode === undefined) attribute(ATTR.storedMethod, request.method);
  attribute(ATTR.secret, request.secret);
  attribute(ATTR.queryString, request.queryString);
  attribute(ATTR.route, request.route);
  attribute(ATTR.sslCert, request.sslCert);
  attribute(ATTR.sslCipher, request.sslCipher);
  attribute(ATTR.sslSession, request.sslSession);
  if (request.sslKeySize !== undefined) {
    w.byte(ATTR.sslKeySize);
    w.int(request.sslKeySize);
  }
  for (const [name, value] of request.attributes) {
    w.byte(ATTR.reqAttribute);
    w.string(name);
    w.string(value);
  }
  w.byte(ATTR.areDone);
  return w.finish();
}

/** One request body packet; an empty `data` is the end-of-body packet. `data` must fit maxRequestChunk. */
export function encodeBodyChunk(data: Buffer): Buffer[] {
  if (data.length === 0) return [END_OF_BODY];
  const head = Buffer.allocUnsafe(PACKET_HEADER_SIZE + 2);
  head.writeUInt16BE(TO_CONTAINER_MAGIC, 0);
  head.writeUInt16BE(data.length + 2, 2);
  head.writeUInt16BE(data.length, 4);
  return [head, data];
}

/** The empty data packet: end of the request body, or "nothing more" when Tomcat asks again. */
export const END_OF_BODY = Buffer.from([0x12, 0x34, 0x00, 0x00]);

export const CPING = Buffer.from([0x12, 0x34, 0x00, 0x01, PREFIX_CPING]);
