// Every connection Dayshift closes is released (its file descriptor closed) shortly after its last
// bytes have left, even when the client never closes its side: 408 for a head too slow, 400, 431, an
// answer with Connection: close, keep-alive expiry, shutdown, and the admin listener's refused heads.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { AdminServer } from '../../src/admin/server.js';
import { selfSigned } from '../support/certs.js';
import { startMember, type TestMember } from '../support/members.js';
import { requirePeer } from '../support/peers.js';
import { startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';
import { statuses } from '../support/raw-http.js';

/** A client that never closes its side of the connection (half-open allowed), as the review's did. */
interface Client {
  socket: net.Socket;
  text(): string;
  /** The proxy sent FIN. */
  ended: boolean;
}

async function open(port: number, bytes: string, secure = false): Promise<Client> {
  // tls.connect takes allowHalfOpen (it passes it to its TLSSocket), though its type does not list it.
  const socket = secure
    ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, allowHalfOpen: true } as tls.ConnectionOptions)
    : net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(socket, secure ? 'secureConnect' : 'connect');
  let text = '';
  const client: Client = { socket, text: () => text, ended: false };
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('end', () => (client.ended = true));
  socket.on('error', () => undefined);
  socket.write(bytes);
  return client;
}

/**
 * Sockets on local port `port` for which this process still holds a file descriptor (ss lists the
 * owning process only for those; a socket closed after its FIN shows without one until it is gone).
 */
function held(ss: string, port: number): number {
  const lines = execFileSync(ss, ['-tnpH', `( sport = :${port} )`])
    .toString()
    .split('\n');
  return lines.filter((line) => line.includes(`pid=${process.pid},`)).length;
}

/**
 * Waits until the proxy has closed its side of every client's connection, then until the listener on
 * `port` holds none of them any more, while the clients keep theirs open.
 */
async function allReleased(ss: string, port: number, clients: Client[], what: string): Promise<void> {
  try {
    await waitFor(() => clients.every((c) => c.ended || c.socket.destroyed), 15_000, `${what}: closed by the proxy`);
    await waitFor(() => held(ss, port) === 0, 15_000, `${what}: released`);
  } finally {
    for (const c of clients) c.socket.destroy();
  }
}

const PARTIAL = 'GET / HTTP/1.1\r\nHost: exa';

describe('connections Dayshift closes are released', () => {
  let dir: string;
  let member: TestMember;
  /** A long idle timeout (Node's server would close a half-open socket after it) ... */
  let proxy: TestProxy;
  /** ... and a short one, for a short head timeout (it follows timeouts.idle). */
  let hasty: TestProxy;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-closing-'));
    member = await startMember('m');
    const config = (idle: string) => ({
      listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'example.com') },
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      limits: { header_size: '8k' },
      timeouts: { idle, client_keepalive: '1s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    proxy = await startTestProxy(config('60s'));
    hasty = await startTestProxy(config('1s'));
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await hasty?.handle.close(1000);
    await member?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const path of [
    { name: 'plain listener (the fast lane)', tls: false },
    { name: "TLS listener (Node's http server)", tls: true },
  ]) {
    describe(path.name, () => {
      const port = (p = proxy) => (path.tls ? p.handle.addresses().https[0]!.port : p.port);

      it('releases 50 connections answered 408 for a head that stopped coming', async (t) => {
        const ss = requirePeer(t, 'ss', 'iproute2');
        if (!ss) return;
        const clients = await Promise.all(Array.from({ length: 50 }, () => open(port(hasty), PARTIAL, path.tls)));
        await allReleased(ss, port(hasty), clients, 'the 408 connections');
        // On Node's server the socket's idle timer (timeouts.idle, as long as the head timeout) may close
        // a silent connection first, without an answer; the lane always answers 408.
        for (const c of clients) assert.deepEqual(statuses(c.text()), path.tls && c.text() === '' ? [] : [408]);
      });

      it('releases connections answered 400 and 431', async (t) => {
        const ss = requirePeer(t, 'ss', 'iproute2');
        if (!ss) return;
        const clients = await Promise.all([
          open(port(), 'GET / HTTP/1.1\r\nHost: example.com\r\nX-Bad: a\x00b\r\n\r\n', path.tls),
          open(port(), `GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`, path.tls),
        ]);
        await allReleased(ss, port(), clients, 'the 400 and 431 connections');
        assert.deepEqual(
          clients.map((c) => statuses(c.text())),
          [[400], [431]],
        );
      });

      it('releases a connection after an answer with Connection: close, and one whose keep-alive expired', async (t) => {
        const ss = requirePeer(t, 'ss', 'iproute2');
        if (!ss) return;
        const clients = await Promise.all([
          open(port(), 'GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n', path.tls),
          open(port(), 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n', path.tls),
        ]);
        await allReleased(ss, port(), clients, 'the answered connections');
        assert.deepEqual(
          clients.map((c) => statuses(c.text())),
          [[200], [200]],
        );
      });

      it('at shutdown, answers a connection whose first request comes after the close, and closes an idle one cleanly', async () => {
        const own = await startTestProxy({
          listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', tls: selfSigned(dir, 'default', 'example.com') },
          clusters: { c: { members: [{ url: member.url }] } },
          health: { enabled: false },
          timeouts: { client_keepalive: '10s' },
          sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
        });
        const errors: string[] = [];
        const watch = (c: Client) =>
          c.socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
        const fresh = await open(port(own), '', path.tls);
        const idle = await open(port(own), 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n', path.tls);
        watch(fresh);
        watch(idle);
        try {
          await waitFor(() => statuses(idle.text()).length === 1, 5000, 'the idle connection to be answered');
          const closed = own.handle.close(10_000);
          // The client that connected a moment before the close sends its request now.
          fresh.socket.write('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n');
          await waitFor(() => fresh.ended && idle.ended, 8000, 'both connections to be closed by the proxy');
          await closed;
          assert.deepEqual(statuses(fresh.text()), [200]);
          assert.match(fresh.text(), /\r\nconnection: close\r\n/i);
          assert.deepEqual(statuses(idle.text()), [200], 'the idle connection is closed without another answer');
          assert.deepEqual(errors, [], 'no connection is reset');
        } finally {
          fresh.socket.destroy();
          idle.socket.destroy();
          await own.handle.close(0);
        }
      });
    });
  }

  it('releases idle and busy connections at shutdown', async (t) => {
    const ss = requirePeer(t, 'ss', 'iproute2');
    if (!ss) return;
    let release: (() => void) | undefined;
    const slow = await startMember('slow', (req, res) => {
      req.resume();
      release = () => res.end('finished');
    });
    const own = await startTestProxy({
      clusters: { c: { members: [{ url: slow.url }] } },
      health: { enabled: false },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
    try {
      const idle = await open(own.port, PARTIAL.slice(0, 3));
      const busy = await open(own.port, 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n');
      await waitFor(() => release !== undefined, 5000, 'the request at the member');
      const closed = own.handle.close(10_000);
      release!();
      await allReleased(ss, own.port, [idle, busy], 'the connections at shutdown');
      assert.match(busy.text(), /finished$/);
      await closed;
    } finally {
      await slow.close();
    }
  });
});

describe('the admin listener', () => {
  let server: AdminServer;
  let port = 0;

  before(async () => {
    server = new AdminServer({
      token: 'closing-test-token-0123456789',
      logger: pino({ level: 'silent' }),
      version: 'test',
    });
    port = (await server.listen('127.0.0.1', 0)).port;
  });
  after(() => server.close());

  it('answers 408 to partial heads within seconds and releases their connections', async (t) => {
    const ss = requirePeer(t, 'ss', 'iproute2');
    if (!ss) return;
    const clients = await Promise.all(Array.from({ length: 50 }, () => open(port, 'GET /healthz HTTP/1.1\r\nHo')));
    await allReleased(ss, port, clients, 'the admin connections');
    for (const c of clients) assert.deepEqual(statuses(c.text()), [408]);
  });

  it('releases a connection answered 400', async (t) => {
    const ss = requirePeer(t, 'ss', 'iproute2');
    if (!ss) return;
    const client = await open(port, 'GET /healthz HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n');
    await allReleased(ss, port, [client], 'the 400 connection');
    assert.deepEqual(statuses(client.text()), [400]);
  });
});
