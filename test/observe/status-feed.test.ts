// /api/events builds one status report per tick and sends that same report to every connected client;
// its timer runs only while a client is connected.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { AdminClient } from '../../src/cli/client.js';
import type { StatusReport } from '../../src/observe/status-report.js';
import { StatusFeed, type FeedClient, type Ticker } from '../../src/observe/status-feed.js';
import { startMember, type TestMember } from '../support/members.js';
import { waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

interface Report {
  n: number;
}

/** A ticker the test fires by hand, so that "one per tick" is counted without waiting for seconds to pass. */
function handTicker() {
  const ticks = new Set<() => void>();
  const ticker: Ticker = (tick) => {
    ticks.add(tick);
    return () => ticks.delete(tick);
  };
  return {
    ticker,
    tick: () => ticks.forEach((t) => t()),
    get timers() {
      return ticks.size;
    },
  };
}

/** Reports built on demand: each build waits until the test finishes it. */
function handBuilder() {
  const pending: ((report: Report) => void)[] = [];
  const failing: ((err: Error) => void)[] = [];
  let started = 0;
  return {
    build: () => {
      started++;
      return new Promise<Report>((resolve, reject) => {
        pending.push(resolve);
        failing.push(reject);
      });
    },
    get started() {
      return started;
    },
    get pending() {
      return pending.length;
    },
    finish(): Report {
      failing.shift();
      const report = { n: started };
      pending.shift()!(report);
      return report;
    },
    fail(): void {
      pending.shift();
      failing.shift()!(new Error('driver out of reach'));
    },
  };
}

class TestClient implements FeedClient<Report> {
  readonly got: Report[] = [];
  isBlocked = false;
  private waiters: (() => void)[] = [];

  send(report: Report): void {
    this.got.push(report);
    this.waiters.splice(0).forEach((wake) => wake());
  }

  blocked(): boolean {
    return this.isBlocked;
  }

  /** Resolves once the client holds `count` reports. */
  async holds(count: number): Promise<void> {
    while (this.got.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

const testClient = () => new TestClient();

function feedWith(changes = new EventEmitter<{ change: [] }>()) {
  const hand = handTicker();
  const builder = handBuilder();
  const feed = new StatusFeed<Report>({
    build: builder.build,
    watch: (listener) => {
      changes.on('change', listener);
      return () => changes.off('change', listener);
    },
    intervalMs: 1000,
    ticker: hand.ticker,
  });
  return { feed, hand, builder, changes };
}

describe('status feed', () => {
  test('with several clients a report is built once per tick and the same report goes to each', async () => {
    const { feed, hand, builder } = feedWith();
    const clients = [testClient(), testClient(), testClient()];
    for (const c of clients) feed.join(c);
    // The first client asked for a report; the others joined while it was being built and share it.
    assert.equal(builder.started, 1);
    const first = builder.finish();
    await Promise.all(clients.map((c) => c.holds(1)));
    const sent = [first];
    for (let tick = 1; tick <= 3; tick++) {
      hand.tick();
      assert.equal(builder.started, 1 + tick, `one build for tick ${tick}, not one per client`);
      sent.push(builder.finish());
      await Promise.all(clients.map((c) => c.holds(1 + tick)));
    }
    assert.equal(feed.builds, 4);
    for (const c of clients) {
      assert.equal(c.got.length, 4);
      c.got.forEach((report, i) => assert.equal(report, sent[i], 'the very same report object'));
    }
  });

  test('the timer and the change listener run only while a client is connected', async () => {
    const { feed, hand, builder, changes } = feedWith();
    assert.equal(hand.timers, 0);
    const clients = [testClient(), testClient()];
    feed.join(clients[0]!);
    feed.join(clients[1]!);
    assert.deepEqual(
      [hand.timers, changes.listenerCount('change'), feed.running],
      [1, 1, true],
      'one timer for all clients',
    );
    builder.finish();
    await clients[0]!.holds(1);
    feed.leave(clients[0]!);
    assert.deepEqual([hand.timers, feed.running], [1, true], 'a client is still connected');
    feed.leave(clients[1]!);
    assert.deepEqual(
      [hand.timers, changes.listenerCount('change'), feed.running],
      [0, 0, false],
      'the last client left: the timer stopped',
    );
    hand.tick();
    changes.emit('change');
    assert.equal(builder.started, 1, 'nothing is built with no client');

    const again = testClient();
    feed.join(again);
    assert.deepEqual(
      [hand.timers, builder.started],
      [1, 2],
      'a new client starts the timer again and gets a report at once',
    );
    builder.finish();
    await again.holds(1);
    feed.leave(again);
    assert.equal(hand.timers, 0);
  });

  test('a change during a build gets a fresh report after it; a tick during a build is dropped', async () => {
    const { feed, hand, builder, changes } = feedWith();
    const c = testClient();
    feed.join(c);
    hand.tick();
    assert.equal(builder.started, 1, 'a tick while a report is being built builds nothing more');
    builder.finish();
    await c.holds(1);
    hand.tick();
    changes.emit('change');
    changes.emit('change');
    assert.equal(builder.started, 2);
    builder.finish();
    await c.holds(2);
    // The report of the tick began before the changes: one more, built after them.
    assert.equal(builder.started, 3);
    builder.finish();
    await c.holds(3);
    assert.equal(builder.started, 3);
    feed.leave(c);
  });

  test('a client that has not read the last report skips reports; the others get them; a failed build sends nothing', async () => {
    const { feed, hand, builder } = feedWith();
    const slow = testClient();
    const quick = testClient();
    feed.join(slow);
    feed.join(quick);
    builder.finish();
    await quick.holds(1);
    slow.isBlocked = true;
    hand.tick();
    builder.finish();
    await quick.holds(2);
    assert.equal(slow.got.length, 1);
    hand.tick();
    builder.fail();
    slow.isBlocked = false;
    // The failure reaches the feed a moment later; until then ticks are dropped as during any build.
    await waitFor(
      () => {
        hand.tick();
        return builder.started === 4;
      },
      5000,
      'a tick after a failed build to build again',
    );
    const report = builder.finish();
    await quick.holds(3);
    assert.deepEqual([quick.got[2], slow.got[1], slow.got.length], [report, report, 2]);
    feed.leave(slow);
    feed.leave(quick);
  });
});

describe('GET /api/events', () => {
  let members: TestMember[] = [];
  let ds: TestDayshift;

  before(async () => {
    members = await Promise.all(['a1', 'b1'].map((n) => startMember(n)));
    ds = await startTestDayshift({
      clusters: {
        'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }] },
        'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
      },
      health: { enabled: false },
      sites: { public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
    });
  });
  after(async () => {
    await ds?.stop();
    await Promise.all(members.map((m) => m.close()));
  });

  test('every connected client gets the same reports, and the timer stops when the last one leaves', async () => {
    const feed = ds.dayshift.statusFeed;
    assert.equal(feed.running, false);
    const streams = [0, 1, 2].map(() => {
      const got: StatusReport[] = [];
      const stop = new AbortController();
      const done = new AdminClient(ds.adminUrl, ds.token)
        .events('/api/events', (event, data) => event === 'status' && got.push(data as StatusReport), {
          signal: stop.signal,
        })
        .catch((err: Error) => assert.equal(err.name, 'AbortError'));
      return { got, stop, done };
    });
    await waitFor(() => streams.every((s) => s.got.length > 0), 5000, 'a first report on every stream');
    assert.equal(feed.running, true);

    // A change reaches everyone in the same report.
    assert.equal((await ds.api('POST', '/api/clusters/prod-b/weight', { weight: 3 })).status, 200);
    const weightOf = (r: StatusReport) => r.clusters.find((c) => c.name === 'prod-b')!.weight;
    await waitFor(
      () => streams.every((s) => s.got.some((r) => weightOf(r) === 3)),
      5000,
      'the new weight on every stream',
    );
    const from = streams.map((s) => s.got.findIndex((r) => weightOf(r) === 3));
    // From the change on, the clients see one sequence of reports: the same reports, down to when each was made.
    await waitFor(() => streams.every((s, i) => s.got.length >= from[i]! + 2), 5000, 'a tick after the change');
    const seen = streams.map((s, i) => s.got.slice(from[i], from[i]! + 2));
    assert.deepEqual(seen[1], seen[0]);
    assert.deepEqual(seen[2], seen[0]);

    for (const s of streams) s.stop.abort();
    await Promise.all(streams.map((s) => s.done));
    await waitFor(() => !feed.running, 5000, 'the timer to stop once no client is connected');
    const builds = feed.builds;
    assert.equal((await ds.api('POST', '/api/clusters/prod-b/weight', { weight: 1 })).status, 200);
    assert.equal(feed.builds, builds, 'a change with no client connected builds nothing');
  });
});
