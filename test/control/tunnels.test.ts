// Open WebSocket/upgrade tunnels hold a drain. At the deadline the drain was started with they are
// closed (in batches), in the name of whoever set it, and the audit log says so; the drain completes and
// the clients reconnect to a live cluster. Watching a drain (GET) never closes anything.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, afterEach, before, test } from 'node:test';
import type { AuditEntry } from '../../src/control/audit.js';
import type { DrainProgress } from '../../src/control/plane.js';
import { runCli } from '../support/cli.js';
import { startMember, type TestMember } from '../support/members.js';
import { waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

let members: TestMember[] = [];
let ds: TestDayshift;
const opened: net.Socket[] = [];

before(async () => {
  members = await Promise.all(['a1', 'b1'].map((name) => startMember(name)));
  // Each member accepts any upgrade, echoes what it gets, and keeps the tunnel open until the other side closes it.
  for (const member of members) {
    member.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
      socket.on('error', () => undefined);
    });
  }
  ds = await startTestDayshift({
    clusters: {
      'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }] },
      'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
    },
    health: { enabled: false },
    sites: { public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
  });
});
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' });
  await ds.api('POST', '/api/members/prod-a/a1/state', { state: 'ready' });
  await waitFor(() => openTunnels('a1') === 0, 5000, 'the tunnels of the test to be counted closed');
});
after(async () => {
  await ds?.stop();
  await Promise.all(members.map((m) => m.close()));
});

const openTunnels = (member: string, on = ds) =>
  on.dayshift.proxy!.stats().members.find((m) => m.id === member)!.openTunnels;

/** Opens upgrade tunnels (through `on`) until `count` of them go to the wanted member. */
async function tunnelsTo(member: string, count: number, on = ds): Promise<net.Socket[]> {
  const kept: net.Socket[] = [];
  for (let i = 0; kept.length < count && i < 100; i++) {
    const socket = net.connect(on.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: chat\r\n\r\n');
    const [head] = (await once(socket, 'data')) as [Buffer];
    assert.match(head.toString(), /^HTTP\/1\.1 101/);
    if (openTunnels(member, on) > kept.length) kept.push(socket);
    else socket.destroy();
  }
  opened.push(...kept);
  return kept;
}

/** Sends a line through the tunnel and waits for the member's echo: the tunnel works end to end. */
async function echoes(socket: net.Socket): Promise<boolean> {
  const line = `ping ${Math.random()}\n`;
  let got = '';
  const reply = new Promise<boolean>((resolve) => {
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.includes(line)) done(true);
    };
    const onClose = () => done(false);
    const done = (ok: boolean) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(ok);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
  socket.write(line);
  return reply;
}

const closings = async (on = ds) =>
  (await on.api<AuditEntry[]>('GET', '/api/audit?limit=1000')).body.filter((e) => e.action === 'close tunnels');

test('watching a drain past its deadline (GET, long poll, stream or `dayshift wait`) closes no tunnel', async () => {
  const sockets = await tunnelsTo('a1', 2);
  assert.equal(sockets.length, 2);
  const audited = (await closings()).length;
  assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'draining' })).status, 200);

  // A reader's own deadline ends its wait at once, reporting the tunnels still there.
  const polled = await ds.api<DrainProgress>('GET', '/api/drain/prod-a?wait=1&deadline=1ms&timeout=20s');
  assert.deepEqual([polled.body.reason, polled.body.drained, polled.body.tunnels], ['deadline', true, 2]);
  const streamed = await fetch(`${ds.adminUrl}/api/drain/prod-a?deadline=1ms`, {
    headers: { authorization: `Bearer ${ds.token}`, accept: 'text/event-stream' },
  });
  const events = await streamed.text();
  const done = JSON.parse(/^event: done\ndata: (.*)$/m.exec(events)![1]!) as DrainProgress;
  assert.deepEqual([done.reason, done.tunnels], ['deadline', 2]);
  // `dayshift wait --deadline` is such a reader: past it, exit 4, and nothing closed.
  const waited = await runCli([
    'wait',
    'prod-a',
    '--deadline',
    '1ms',
    '--json',
    '--admin',
    ds.adminUrl,
    '--token',
    ds.token,
  ]);
  assert.equal(waited.code, 4, waited.stderr);
  assert.deepEqual(
    [(JSON.parse(waited.stdout) as DrainProgress).reason, (JSON.parse(waited.stdout) as DrainProgress).tunnels],
    ['deadline', 2],
  );

  for (const socket of sockets) assert.equal(await echoes(socket), true, 'the tunnel still carries data');
  assert.equal(openTunnels('a1'), 2);
  assert.equal((await closings()).length, audited, 'no tunnels were closed, so none are audited');
});

test('the deadline a drain is started with closes its tunnels and the audit log records who, what and how many', async () => {
  const sockets = await tunnelsTo('a1', 3);
  assert.equal(sockets.length, 3);
  const audited = (await closings()).length;
  assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'draining' })).status, 200);
  const holding = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
  assert.deepEqual([holding.drained, holding.tunnels], [false, 3]);

  // The operator gives the running drain a deadline of 1s from its start: `drain --wait --deadline`.
  const closed = sockets.map((s) => once(s, 'close'));
  const drain = await runCli([
    'drain',
    'prod-a',
    '--wait',
    '--deadline',
    '1s',
    '--json',
    '--admin',
    ds.adminUrl,
    '--token',
    ds.token,
  ]);
  assert.equal(drain.code, 4, drain.stderr);
  assert.equal((JSON.parse(drain.stdout) as DrainProgress).reason, 'deadline');
  await Promise.all(closed);
  // The member side of each tunnel closes right after the client side.
  await waitFor(() => openTunnels('a1') === 0, 5000, 'the tunnels to be counted closed');

  await waitFor(async () => (await closings()).length > audited, 5000, 'the closing in the audit log');
  const entries = await closings();
  assert.equal(entries.length, audited + 1, 'one entry for the deadline');
  const entry = entries.at(-1)!;
  assert.deepEqual(
    [entry.who, entry.from, entry.target, entry.detail?.tunnels],
    ['token:admin', '127.0.0.1', 'prod-a', 3],
  );
  const progress = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
  assert.equal(entry.detail?.deadline, progress.deadline, 'the deadline the GET reports is the one that closed them');
  assert.equal(progress.remainingMs, 0);
});

test('a drain owns its deadline: with nobody watching, its tunnels are closed when it passes, in the name of who set it', async () => {
  const sockets = await tunnelsTo('a1', 2);
  assert.equal(sockets.length, 2);
  const audited = (await closings()).length;
  const closed = sockets.map((s) => once(s, 'close'));
  assert.equal(
    (await ds.api('POST', '/api/members/prod-a/a1/state', { state: 'draining', deadline: '1ms' })).status,
    200,
  );
  await Promise.all(closed);
  await waitFor(async () => (await closings()).length > audited, 5000, 'the closing in the audit log');
  const entry = (await closings()).at(-1)!;
  assert.deepEqual([entry.who, entry.target, entry.detail?.tunnels], ['token:admin', 'prod-a/a1', 2]);
  await waitFor(() => openTunnels('a1') === 0, 5000, 'the tunnels to be counted closed');
  const drained = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a~a1')).body;
  assert.deepEqual(
    [drained.drained, drained.reason, drained.tunnels],
    [true, 'deadline', 0],
    'ended by its deadline, though idle now',
  );
});

test('a drain started without a deadline owns drain.deadline: its tunnels are closed then, in the name of who drained', async () => {
  const other = await startTestDayshift({
    clusters: {
      'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }] },
      'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
    },
    health: { enabled: false },
    drain: { deadline: '1s' },
    sites: { public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
  });
  try {
    const [socket] = await tunnelsTo('a1', 1, other);
    assert.ok(socket);
    const closed = once(socket, 'close');
    // `dayshift drain prod-a`, nobody waiting.
    const drain = await runCli(['drain', 'prod-a', '--json', '--admin', other.adminUrl, '--token', other.token]);
    assert.equal(drain.code, 0, drain.stderr);
    const progress = (await other.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
    assert.equal(
      Date.parse(progress.deadline!) - Date.parse(progress.since!),
      1000,
      'the deadline is drain.deadline from the start',
    );
    await closed;
    await waitFor(async () => (await closings(other)).length === 1, 5000, 'the closing in the audit log');
    const entry = (await closings(other))[0]!;
    assert.deepEqual(
      [entry.who, entry.target, entry.detail?.tunnels, entry.detail?.deadline],
      ['token:admin', 'prod-a', 1, progress.deadline],
    );
  } finally {
    await other.stop();
  }
});

test('a deadline applies to a drain only', async () => {
  const refused = await ds.api<{ error: string }>('POST', '/api/clusters/prod-a/traffic', {
    state: 'live',
    deadline: '10m',
  });
  assert.equal(refused.status, 400);
  assert.match(refused.body.error, /deadline applies to state "draining" only/);
  const member = await ds.api<{ error: string }>('POST', '/api/members/prod-a/a1/state', {
    state: 'disabled',
    deadline: '10m',
  });
  assert.equal(member.status, 400);
  const bad = await ds.api<{ error: string }>('POST', '/api/members/prod-a/a1/state', {
    state: 'draining',
    deadline: 'soon',
  });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /expected a duration/);
});

test('a cluster the config starts as draining gets its deadline counted from when it is drained again', async () => {
  const other = await startTestDayshift({
    clusters: {
      'prod-a': { traffic: 'draining', members: [{ url: members[0]!.url, route: 'a1' }] },
      'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
    },
    health: { enabled: false },
    sites: { public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
  });
  try {
    const before = Date.now();
    assert.equal(
      (await other.api('POST', '/api/clusters/prod-a/traffic', { state: 'draining', deadline: '10m' })).status,
      200,
    );
    const progress = (await other.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
    assert.equal(progress.reason, 'idle', 'a drain with nothing left, no longer "not-draining"');
    assert.ok(Date.parse(progress.since!) >= before - 1000, `the drain starts now, not at ${progress.since}`);
    assert.equal(Date.parse(progress.deadline!) - Date.parse(progress.since!), 600_000);
  } finally {
    await other.stop();
  }
});
