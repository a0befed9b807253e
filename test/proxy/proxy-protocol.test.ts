// The PROXY protocol header parser and writer (src/proxy/proxy-protocol.ts), table by table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxyHeader, proxyHeader, V2_SIGNATURE, type ProxyHeader } from '../../src/proxy/proxy-protocol.js';

const MAX = 16 * 1024;

/** A v2 header: version/command byte, family/transport byte, then the address block and TLVs. */
function v2(versionCommand: number, familyTransport: number, body: number[] | Buffer): Buffer {
  const rest = Buffer.from(body);
  const fixed = Buffer.alloc(4);
  fixed[0] = versionCommand;
  fixed[1] = familyTransport;
  fixed.writeUInt16BE(rest.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, rest]);
}

const INET = [203, 0, 113, 7, 192, 0, 2, 1, 0x30, 0x39, 0x01, 0xbb]; // 203.0.113.7:12345 → 192.0.2.1:443
const INET6 = [
  0x20,
  0x01,
  0x0d,
  0xb8,
  ...Array<number>(11).fill(0),
  1,
  ...Array<number>(10).fill(0),
  0xff,
  0xff,
  192,
  0,
  2,
  1,
  0x30,
  0x39,
  0x01,
  0xbb,
];
const TLV = [0x01, 0x00, 0x02, 0x68, 0x32]; // ALPN "h2"

describe('parseProxyHeader: whole headers', () => {
  const cases: [string, Buffer, ProxyHeader][] = [
    [
      'v1 TCP4',
      Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 12345 443\r\n'),
      {
        kind: 'header',
        version: 1,
        length: 44,
        source: { address: '203.0.113.7', port: 12345, family: 'IPv4' },
        destination: { address: '192.0.2.1', port: 443, family: 'IPv4' },
      },
    ],
    [
      'v1 TCP6 (written in lower case, as Node writes addresses)',
      Buffer.from('PROXY TCP6 2001:DB8::1 ::1 65535 0\r\n'),
      {
        kind: 'header',
        version: 1,
        length: 36,
        source: { address: '2001:db8::1', port: 65535, family: 'IPv6' },
        destination: { address: '::1', port: 0, family: 'IPv6' },
      },
    ],
    ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n'), { kind: 'header', version: 1, length: 15 }],
    [
      'v1 UNKNOWN with addresses (ignored)',
      Buffer.from('PROXY UNKNOWN ::1 ::1 1 2\r\n'),
      { kind: 'header', version: 1, length: 27 },
    ],
    [
      'v2 PROXY AF_INET',
      v2(0x21, 0x11, INET),
      {
        kind: 'header',
        version: 2,
        length: 28,
        source: { address: '203.0.113.7', port: 12345, family: 'IPv4' },
        destination: { address: '192.0.2.1', port: 443, family: 'IPv4' },
      },
    ],
    [
      'v2 PROXY AF_INET with a TLV (skipped)',
      v2(0x21, 0x11, [...INET, ...TLV]),
      {
        kind: 'header',
        version: 2,
        length: 33,
        source: { address: '203.0.113.7', port: 12345, family: 'IPv4' },
        destination: { address: '192.0.2.1', port: 443, family: 'IPv4' },
      },
    ],
    [
      'v2 PROXY AF_INET6 (IPv4-mapped destination as Node writes it)',
      v2(0x21, 0x21, INET6),
      {
        kind: 'header',
        version: 2,
        length: 52,
        source: { address: '2001:db8::1', port: 12345, family: 'IPv6' },
        destination: { address: '::ffff:192.0.2.1', port: 443, family: 'IPv6' },
      },
    ],
    ['v2 LOCAL (a health check): no addresses', v2(0x20, 0x00, []), { kind: 'header', version: 2, length: 16 }],
    ['v2 LOCAL with an address block (ignored)', v2(0x20, 0x11, INET), { kind: 'header', version: 2, length: 28 }],
    ['v2 PROXY AF_UNSPEC: no addresses', v2(0x21, 0x00, []), { kind: 'header', version: 2, length: 16 }],
  ];
  for (const [name, bytes, expected] of cases) {
    it(name, () => {
      assert.deepEqual(parseProxyHeader(bytes, MAX), expected);
      // The bytes after the header are the client's: they do not change what the header says.
      assert.deepEqual(parseProxyHeader(Buffer.concat([bytes, Buffer.from('GET / HTTP/1.1\r\n')]), MAX), expected);
    });
    it(`${name}: every cut short of the end is incomplete`, () => {
      for (let n = 1; n < bytes.length; n++)
        assert.deepEqual(parseProxyHeader(bytes.subarray(0, n), MAX), { kind: 'incomplete' }, `first ${n} bytes`);
    });
  }
});

describe('parseProxyHeader: malformed headers', () => {
  const cases: [string, Buffer | string][] = [
    ['a plain HTTP request', 'GET / HTTP/1.1\r\n'],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05])],
    ['lower-case proxy', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['P then not PROXY', 'POST / HTTP/1.1\r\n'],
    ['v1 without CRLF in 107 bytes', `PROXY TCP4 ${'1'.repeat(120)}`],
    ['v1 LF alone', `PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n${' '.repeat(100)}`],
    ['v1 missing the ports', 'PROXY TCP4 1.2.3.4 5.6.7.8\r\n'],
    ['v1 extra field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'],
    ['v1 double space', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
    ['v1 unknown protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['v1 TCP4 with IPv6 addresses', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['v1 TCP6 with IPv4 addresses', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['v1 a host name', 'PROXY TCP4 example.com 5.6.7.8 1 2\r\n'],
    ['v1 port over 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
    ['v1 port with a leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n'],
    ['v1 port with a sign', 'PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n'],
    ['v2 signature broken', Buffer.concat([Buffer.from('\r\n\r\n\0\r\nQUIT!'), Buffer.alloc(8)])],
    ['v2 version 1', v2(0x11, 0x11, INET)],
    ['v2 version 3', v2(0x31, 0x11, INET)],
    ['v2 command 2', v2(0x22, 0x11, INET)],
    ['v2 AF_INET block too short', v2(0x21, 0x11, INET.slice(0, 11))],
    ['v2 AF_INET6 block too short', v2(0x21, 0x21, INET6.slice(0, 35))],
    ['v2 AF_UNIX', v2(0x21, 0x31, Array<number>(216).fill(0))],
    ['v2 unknown family', v2(0x21, 0x41, INET)],
    ['v2 DGRAM', v2(0x21, 0x12, INET)],
    ['v2 longer than allowed (checked from its length field alone)', v2(0x21, 0x11, Buffer.alloc(MAX)).subarray(0, 16)],
  ];
  for (const [name, bytes] of cases) {
    it(name, () => {
      const header = parseProxyHeader(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, MAX);
      assert.equal(header.kind, 'malformed', JSON.stringify(header));
    });
  }
});

describe('proxyHeader: what a member is sent reads back as written', () => {
  const v4 = { address: '203.0.113.7', port: 40000, family: 'IPv4' } as const;
  const v4dst = { address: '192.0.2.1', port: 80, family: 'IPv4' } as const;
  const v6 = { address: '2001:db8::7', port: 40000, family: 'IPv6' } as const;
  const v6dst = { address: '::1', port: 8080, family: 'IPv6' } as const;
  it('v1 TCP4 is the text HAProxy sends', () => {
    assert.equal(proxyHeader('v1', v4, v4dst).toString(), 'PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n');
  });
  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: IPv4, IPv6, and a mixed pair written as IPv6`, () => {
      const read = (source: typeof v4 | typeof v6, destination: typeof v4dst | typeof v6dst) => {
        const header = parseProxyHeader(proxyHeader(version, source, destination), MAX);
        assert.equal(header.kind, 'header');
        return header.kind === 'header' ? [header.source, header.destination] : [];
      };
      assert.deepEqual(read(v4, v4dst), [v4, v4dst]);
      assert.deepEqual(read(v6, v6dst), [v6, v6dst]);
      assert.deepEqual(read(v4, v6dst), [{ ...v4, address: '::ffff:203.0.113.7', family: 'IPv6' }, v6dst]);
    });
  }
});
