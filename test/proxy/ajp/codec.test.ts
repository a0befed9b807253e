import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeContainerMessage, PacketReader, type ContainerMessage } from '../../../src/proxy/ajp/decoder.js';
import { AjpProtocolError } from '../../../src/proxy/errors.js';
import { encodeBodyChunk, encodeForwardRequest, type ForwardRequest } from '../../../src/proxy/ajp/encoder.js';
import { AjpEncodeError } from '../../../src/proxy/errors.js';
import {
  CPONG,
  decodeForwardRequest,
  endResponse,
  getBodyChunk,
  sendBodyChunk,
  sendHeaders,
  splitProxyPackets,
} from './container.js';

const latin1 = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength });
const token = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,24}$/);
const knownRequestHeader = fc.constantFrom(
  'accept',
  'content-type',
  'content-length',
  'cookie',
  'host',
  'user-agent',
  'authorization',
  'referer',
);
const method = fc.oneof(
  fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PROPFIND', 'MKACTIVITY'),
  fc.stringMatching(/^[A-Z][A-Z-]{0,15}$/),
);

const forwardRequest: fc.Arbitrary<ForwardRequest> = fc.record(
  {
    method,
    protocol: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0'),
    uri: latin1(200),
    remoteAddr: fc.oneof(fc.ipV4(), fc.ipV6()),
    remoteHost: fc.option(latin1(50), { nil: null }),
    serverName: latin1(60),
    serverPort: fc.integer({ min: 0, max: 65535 }),
    isSsl: fc.boolean(),
    headers: fc.array(fc.tuple(fc.oneof(knownRequestHeader, token), latin1(120)), { maxLength: 12 }),
    secret: latin1(40),
    queryString: latin1(120),
    route: token,
    sslCert: latin1(300),
    sslCipher: latin1(40),
    sslSession: latin1(64),
    sslKeySize: fc.integer({ min: 0, max: 65535 }),
    attributes: fc.array(fc.tuple(token, latin1(40)), { maxLength: 4 }),
  },
  {
    requiredKeys: [
      'method',
      'protocol',
      'uri',
      'remoteAddr',
      'remoteHost',
      'serverName',
      'serverPort',
      'isSsl',
      'headers',
      'attributes',
    ],
  },
);

/** What the container decodes has no keys for absent attributes. */
function withoutUndefined(req: ForwardRequest): ForwardRequest {
  return Object.fromEntries(Object.entries(req).filter(([, v]) => v !== undefined)) as unknown as ForwardRequest;
}

test('a Forward Request decodes on the container side to exactly what was encoded', () => {
  fc.assert(
    fc.property(forwardRequest, (req) => {
      const packets = splitProxyPackets(encodeForwardRequest(req, 8192));
      assert.equal(packets.length, 1);
      assert.deepEqual(decodeForwardRequest(packets[0]!), withoutUndefined(req));
    }),
    { numRuns: 300 },
  );
});

test('known methods and headers go out as one-byte / two-byte codes, others as strings', () => {
  const packet = encodeForwardRequest(
    {
      method: 'GET',
      protocol: 'HTTP/1.1',
      uri: '/',
      remoteAddr: '::1',
      remoteHost: null,
      serverName: 'h',
      serverPort: 80,
      isSsl: false,
      headers: [
        ['host', 'h'],
        ['x-a', 'b'],
      ],
      attributes: [],
    },
    8192,
  );
  assert.equal(packet[5], 2, 'GET is method code 2');
  const hostAt = packet.indexOf(Buffer.from([0xa0, 0x0b]));
  assert.ok(hostAt > 0, 'host is header code 0xA00B');
  assert.ok(packet.includes(Buffer.from('\x00\x03x-a\x00', 'latin1')), 'x-a is sent as a string');
});

test('a request too large for one packet is a clean AjpEncodeError naming packet_size', () => {
  const req: ForwardRequest = {
    method: 'GET',
    protocol: 'HTTP/1.1',
    uri: '/',
    remoteAddr: '127.0.0.1',
    remoteHost: null,
    serverName: 'h',
    serverPort: 80,
    isSsl: false,
    headers: [['cookie', 'x'.repeat(9000)]],
    attributes: [],
  };
  assert.throws(
    () => encodeForwardRequest(req, 8192),
    (err: Error) => err instanceof AjpEncodeError && /packet_size/.test(err.message),
  );
  assert.ok(encodeForwardRequest(req, 16384).length > 9000, 'fits with a larger packet size');
});

test('body chunks carry their length twice and the empty packet ends the body', () => {
  const [head, data] = encodeBodyChunk(Buffer.from('hello'));
  assert.deepEqual([...head!], [0x12, 0x34, 0, 7, 0, 5]);
  assert.equal(data!.toString(), 'hello');
  assert.deepEqual([...Buffer.concat(encodeBodyChunk(Buffer.alloc(0)))], [0x12, 0x34, 0, 0]);
});

const headerValue = latin1(80).filter((v) => !/[\r\n\0]/.test(v));
const responseHeaderName = fc.oneof(
  fc.constantFrom('content-type', 'content-length', 'set-cookie', 'location', 'www-authenticate', 'status'),
  token,
);
const containerMessage: fc.Arbitrary<ContainerMessage> = fc
  .oneof(
    fc.record({
      type: fc.constant('headers' as const),
      status: fc.integer({ min: 100, max: 599 }),
      statusMessage: headerValue,
      headers: fc.array(fc.tuple(responseHeaderName, headerValue), { maxLength: 10 }),
    }),
    fc.record({
      type: fc.constant('body' as const),
      data: fc.uint8Array({ maxLength: 8184 }).map((a) => Buffer.from(a)),
    }),
    fc.record({ type: fc.constant('end' as const), reuse: fc.boolean() }),
    fc.record({ type: fc.constant('get-body' as const), size: fc.integer({ min: 0, max: 65535 }) }),
    fc.constant({ type: 'cpong' as const }),
  )
  .map((m) => ({ ...m }) as ContainerMessage); // fast-check records have a null prototype; decoded ones do not

function encodeContainer(m: ContainerMessage): Buffer {
  switch (m.type) {
    case 'headers':
      return sendHeaders(m.status, m.statusMessage, m.headers);
    case 'body':
      return sendBodyChunk(m.data);
    case 'end':
      return endResponse(m.reuse);
    case 'get-body':
      return getBodyChunk(m.size);
    case 'cpong':
      return CPONG;
  }
}

/** Feeds `bytes` to a reader in pieces cut at `cuts`, decoding every complete packet. */
function decodeAll(
  bytes: Buffer,
  cuts: number[],
  packetSize = 8192,
): { messages: ContainerMessage[]; leftover: number } {
  const reader = new PacketReader(packetSize);
  const messages: ContainerMessage[] = [];
  let from = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    for (const payload of reader.push(bytes.subarray(from, cut))) messages.push(decodeContainerMessage(payload));
    from = cut;
  }
  return { messages, leftover: reader.buffered };
}

test('container messages survive encoding and any split into socket reads', () => {
  fc.assert(
    fc.property(
      fc.array(containerMessage, { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (messages, cuts) => {
        const bytes = Buffer.concat(messages.map(encodeContainer));
        const { messages: decoded, leftover } = decodeAll(bytes, cuts);
        assert.equal(leftover, 0);
        assert.deepEqual(decoded, messages);
      },
    ),
    { numRuns: 300 },
  );
});

test('random bytes never make the decoder throw anything but AjpProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20_000 }), fc.array(fc.nat(), { maxLength: 5 }), (bytes, cuts) => {
      try {
        decodeAll(Buffer.from(bytes), cuts);
      } catch (err) {
        assert.ok(err instanceof AjpProtocolError, `unexpected ${String(err)}`);
      }
    }),
    { numRuns: 500 },
  );
});

test('valid streams with flipped bytes or cut short either decode or fail with AjpProtocolError', () => {
  fc.assert(
    fc.property(
      fc.array(containerMessage, { minLength: 1, maxLength: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (messages, flips, cutAt) => {
        const bytes = Buffer.concat(messages.map(encodeContainer));
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        try {
          const { leftover } = decodeAll(bytes.subarray(0, cutAt % (bytes.length + 1)), []);
          assert.ok(leftover < 8192, 'a partial packet is bounded by the packet size');
        } catch (err) {
          assert.ok(err instanceof AjpProtocolError, `unexpected ${String(err)}`);
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('a packet longer than the packet size is refused from its header, before its body arrives', () => {
  const reader = new PacketReader(8192);
  assert.throws(
    () => reader.push(Buffer.from([0x41, 0x42, 0x20, 0x00])),
    (err: Error) => err instanceof AjpProtocolError && /exceeds the packet size 8192/.test(err.message),
  );
  const big = new PacketReader(16384);
  assert.deepEqual(big.push(Buffer.from([0x41, 0x42, 0x20, 0x00])), [], 'waits for the rest with a 16 KiB packet size');
});

test('a string claiming more bytes than its packet holds is truncated, not read out of bounds', () => {
  // Send Headers: status 200, message length 500 but only 3 bytes there.
  const payload = Buffer.from([4, 0, 200, 0x01, 0xf4, 0x41, 0x42, 0x43]);
  assert.throws(
    () => decodeContainerMessage(payload),
    (err: Error) => err instanceof AjpProtocolError && /truncated Send Headers/.test(err.message),
  );
});

test('Send Body Chunk trusts its own length, not the packet length (trailing NUL allowed)', () => {
  const payload = Buffer.from([3, 0, 2, 0x68, 0x69, 0]);
  assert.deepEqual(decodeContainerMessage(payload), { type: 'body', data: Buffer.from('hi') });
});
