// Container → proxy packets. The member is untrusted: every length is checked against what is really
// there and against the packet size, and anything off is an AjpProtocolError, never an out-of-range read.
import {
  FROM_CONTAINER_MAGIC,
  NULL_STRING_LENGTH,
  PACKET_HEADER_SIZE,
  PREFIX_CPONG,
  PREFIX_END_RESPONSE,
  PREFIX_GET_BODY_CHUNK,
  PREFIX_SEND_BODY_CHUNK,
  PREFIX_SEND_HEADERS,
  RESPONSE_HEADER_CODE_BASE,
  RESPONSE_HEADER_NAMES,
} from './protocol.js';
import { AjpProtocolError } from '../errors.js';

export type ContainerMessage =
  | { type: 'headers'; status: number; statusMessage: string; headers: [name: string, value: string][] }
  | { type: 'body'; data: Buffer }
  | { type: 'end'; reuse: boolean }
  | { type: 'get-body'; size: number }
  | { type: 'cpong' };

/**
 * Cuts a byte stream into packet payloads. Feed it whatever the socket gives; it keeps at most one
 * partial packet (bounded by the packet size) between calls.
 */
export class PacketReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly packetSize: number) {}

  /** Complete payloads in `chunk` (with what was left before). Throws AjpProtocolError on bad framing. */
  push(chunk: Buffer): Buffer[] {
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const payloads: Buffer[] = [];
    while (data.length >= PACKET_HEADER_SIZE) {
      const magic = data.readUInt16BE(0);
      if (magic !== FROM_CONTAINER_MAGIC)
        throw new AjpProtocolError(`bad packet magic 0x${magic.toString(16).padStart(4, '0')} (expected "AB")`);
      const length = data.readUInt16BE(2);
      if (length === 0) throw new AjpProtocolError('empty packet');
      if (length > this.packetSize - PACKET_HEADER_SIZE) {
        throw new AjpProtocolError(
          `packet of ${length} bytes exceeds the packet size ${this.packetSize} (packet_size must match Tomcat's packetSize)`,
        );
      }
      if (data.length < PACKET_HEADER_SIZE + length) break;
      payloads.push(data.subarray(PACKET_HEADER_SIZE, PACKET_HEADER_SIZE + length));
      data = data.subarray(PACKET_HEADER_SIZE + length);
    }
    // Copy the tail so a small leftover does not pin a large socket buffer.
    this.pending = data.length === 0 ? Buffer.alloc(0) : Buffer.from(data);
    return payloads;
  }

  /** Bytes of an unfinished packet: non-zero when the peer closes means a truncated packet. */
  get buffered(): number {
    return this.pending.length;
  }
}

class PayloadReader {
  private pos = 1;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new AjpProtocolError(`truncated ${this.what} message`);
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  int(): number {
    this.need(2);
    const value = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  /** A string whose length field was already read. */
  stringOfLength(length: number): string | null {
    if (length === NULL_STRING_LENGTH) return null;
    this.need(length + 1);
    const value = this.buf.toString('latin1', this.pos, this.pos + length);
    if (this.buf[this.pos + length] !== 0) throw new AjpProtocolError(`unterminated string in ${this.what} message`);
    this.pos += length + 1;
    return value;
  }

  string(): string | null {
    return this.stringOfLength(this.int());
  }

  bytes(length: number): Buffer {
    this.need(length);
    const value = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  done(): void {
    if (this.pos !== this.buf.length)
      throw new AjpProtocolError(`${this.buf.length - this.pos} stray bytes after ${this.what} message`);
  }
}

/** Decodes one payload (as cut by PacketReader). */
export function decodeContainerMessage(payload: Buffer): ContainerMessage {
  const prefix = payload[0];
  switch (prefix) {
    case PREFIX_SEND_HEADERS: {
      const r = new PayloadReader(payload, 'Send Headers');
      const status = r.int();
      if (status < 100 || status > 999) throw new AjpProtocolError(`invalid status ${status}`);
      const statusMessage = r.string() ?? '';
      const count = r.int();
      const headers: [string, string][] = [];
      for (let i = 0; i < count; i++) {
        const first = r.int();
        let name: string | null;
        if (first >= RESPONSE_HEADER_CODE_BASE && first !== NULL_STRING_LENGTH) {
          name = RESPONSE_HEADER_NAMES[first - RESPONSE_HEADER_CODE_BASE] ?? null;
          if (name === null) throw new AjpProtocolError(`unknown response header code 0x${first.toString(16)}`);
        } else {
          name = r.stringOfLength(first);
          if (name === null || !isToken(name))
            throw new AjpProtocolError(`invalid response header name ${JSON.stringify(name)}`);
          name = name.toLowerCase();
        }
        const value = r.string();
        if (value === null || /[\r\n\0]/.test(value))
          throw new AjpProtocolError(`invalid value for response header ${name}`);
        headers.push([name, value]);
      }
      r.done();
      return { type: 'headers', status, statusMessage, headers };
    }
    case PREFIX_SEND_BODY_CHUNK: {
      const r = new PayloadReader(payload, 'Send Body Chunk');
      // Tomcat adds a trailing NUL after the data; the length field is what counts.
      const data = r.bytes(r.int());
      return { type: 'body', data };
    }
    case PREFIX_END_RESPONSE: {
      const r = new PayloadReader(payload, 'End Response');
      const reuse = r.byte();
      if (reuse > 1) throw new AjpProtocolError(`invalid reuse flag ${reuse}`);
      return { type: 'end', reuse: reuse === 1 };
    }
    case PREFIX_GET_BODY_CHUNK: {
      const r = new PayloadReader(payload, 'Get Body Chunk');
      const size = r.int();
      r.done();
      return { type: 'get-body', size };
    }
    case PREFIX_CPONG:
      if (payload.length !== 1) throw new AjpProtocolError('CPong with a payload');
      return { type: 'cpong' };
    default:
      throw new AjpProtocolError(`unknown message type ${prefix}`);
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function isToken(name: string): boolean {
  return TOKEN.test(name);
}
