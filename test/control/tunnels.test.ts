// Open WebSocket/upgrade tunnels hold a drain, and at the deadline they are closed (in batches), so the
// drain completes and the clients reconnect to a live cluster.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { DrainProgress } from '../../src/control/plane.js';
import { startMember, type TestMember } from '../support/members.js';
import { waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

let members: TestMember[] = [];
let ds: TestDayshift;

before(async () => {
  members = await Promise.all(['a1', 'b1'].map((name) => startMember(name)));
  // Each member accepts any upgrade and keeps the tunnel open until the other side closes it.
  for (const member of members) {
    member.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n');
      socket.on('error', () => undefined);
    });
  }
  ds = await startTestDayshift({
    clusters: { 'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }] }, 'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] } },
    health: { enabled: false },
    sites: { public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
  });
});
after(async () => {
  await ds?.stop();
  await Promise.all(members.map((m) => m.close()));
});

/** Opens upgrade tunnels until `count` of them go to the wanted member. */
async function tunnelsTo(member: string, count: number): Promise<net.Socket[]> {
  const kept: net.Socket[] = [];
  for (let i = 0; kept.length < count && i < 100; i++) {
    const socket = net.connect(ds.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: chat\r\n\r\n');
    const [head] = (await once(socket, 'data')) as [Buffer];
    assert.match(head.toString(), /^HTTP\/1\.1 101/);
    const stats = ds.dayshift.proxy!.stats().members;
    if (stats.find((m) => m.id === member)!.openTunnels > kept.length) kept.push(socket);
    else socket.destroy();
  }
  return kept;
}

test('open tunnels hold a drain until the deadline, then are closed and the drain completes', async () => {
  const sockets = await tunnelsTo('a1', 3);
  assert.equal(sockets.length, 3);
  assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'draining' })).status, 200);
  const holding = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
  assert.deepEqual([holding.drained, holding.tunnels], [false, 3]);

  const closed = sockets.map((s) => once(s, 'close'));
  const done = await ds.api<DrainProgress>('GET', '/api/drain/prod-a?wait=1&deadline=1s&timeout=20s');
  assert.equal(done.body.reason, 'deadline');
  await Promise.all(closed);
  // The member side of each tunnel closes right after the client side.
  await waitFor(() => ds.dayshift.proxy!.stats().members.find((m) => m.id === 'a1')!.openTunnels === 0, 5000, 'the tunnels to be counted closed');
  await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' });
});
