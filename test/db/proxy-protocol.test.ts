// The writer endpoint with database.writer.proxy_protocol, against a real MariaDB that takes PROXY
// headers from the front's address (proxy_protocol_networks): the server sees each client's own
// address, so its host-based accounts (user@'10.1.2.%') keep working behind the front.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { TcpFront } from '../../src/tcp/front.js';
import { pairFor, startMariaDbPair, type MariaDbPair } from '../support/mariadb.js';

let pair: MariaDbPair | undefined;

before(async () => {
  pair = await startMariaDbPair();
});
after(async () => {
  await pair?.stop();
});

/** The address the server sees for a connection made through `port` from 127.0.0.2, or its error. */
async function seenFrom(port: number): Promise<string> {
  try {
    // mysql2 does not bind its own socket to localAddress: it is given one.
    const conn = await createConnection({
      stream: net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }),
      user: 'probe',
      password: 'probe-pw',
    });
    try {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()',
      );
      return String(rows[0]!.host).replace(/:\d+$/, '');
    } finally {
      await conn.end();
    }
  } catch (error) {
    return `${(error as { code?: string }).code}: ${(error as Error).message}`;
  }
}

test('MariaDB sees the client address the front sends in a PROXY header (v1 and v2)', async (t) => {
  const db = pairFor(t, pair);
  if (!db) return;
  // The account exists only for 127.0.0.2: through a plain front the server sees 127.0.0.1 and refuses.
  await db.a.sql(
    "SET GLOBAL proxy_protocol_networks = '127.0.0.1/32'",
    "CREATE USER probe@'127.0.0.2' IDENTIFIED BY 'probe-pw'",
  );
  try {
    for (const version of [undefined, 'v1', 'v2'] as const) {
      const front: TcpFront = new TcpFront({
        listen: { host: '127.0.0.1', port: 0 },
        target: { host: db.a.host, port: db.a.port },
        proxyProtocol: version,
      });
      const { port }: { port: number } = await front.start();
      try {
        assert.equal(
          await seenFrom(port),
          version
            ? '127.0.0.2'
            : "ER_ACCESS_DENIED_ERROR: Access denied for user 'probe'@'127.0.0.1' (using password: YES)",
          `proxyProtocol ${version ?? 'off'}`,
        );
      } finally {
        await front.close();
      }
    }
  } finally {
    await db.a.sql("DROP USER probe@'127.0.0.2'", "SET GLOBAL proxy_protocol_networks = ''");
  }
});
