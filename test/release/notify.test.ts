import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { Dayshift } from '../../src/dayshift.js';
import { startDemoApps, type DemoApps } from '../../src/demo/environment.js';
import type { Release } from '../../src/release/types.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { freePort } from '../../src/ports.js';
import type { ReleaseNotification } from '../../src/release/notify.js';
import { allUp, api, makeWorld, releaseIn, startInProcess, until, type World } from './harness.js';

/** A webhook receiver on loopback that records every request; `answer` decides the reply (or none). */
interface Receiver {
  url: string;
  requests: { headers: IncomingMessage['headers']; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

async function startReceiver(
  answer: (res: ServerResponse, n: number) => void = (res) => res.end('ok'),
): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: JSON.parse(body) as Record<string, unknown> });
      answer(res, requests.length);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/secret`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The JSON notifications a receiver got for one release, in order. */
function notices(receiver: Receiver, release: string): ReleaseNotification[] {
  return receiver.requests.map((r) => r.body as unknown as ReleaseNotification).filter((n) => n.release === release);
}

function eventsOf(receiver: Receiver, release: string): string[] {
  return notices(receiver, release).map((n) => n.event);
}

function noticeOf(receiver: Receiver, release: string, event: string): Promise<ReleaseNotification> {
  return until(`the ${event} notification of ${release}`, () =>
    notices(receiver, release).find((n) => n.event === event),
  );
}

async function setPublicUrl(world: World, url: string): Promise<void> {
  const config = parse(await readFile(world.configFile, 'utf8')) as { admin: Record<string, unknown> };
  config.admin.public_url = url;
  await writeFile(world.configFile, stringify(config));
}

async function start(dayshift: Dayshift, version: string): Promise<string> {
  const started = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  return started.body.id;
}

async function metric(dayshift: Dayshift, line: RegExp): Promise<number> {
  const text = await (await fetch(`${dayshift.adminUrl}/metrics`)).text();
  const match = line.exec(text);
  return match ? Number(match[1]) : NaN;
}

const PUBLIC_URL = 'https://dayshift.example.test/ops/';
const FULL_KEYS = [
  'approvesAt',
  'cluster',
  'clusters',
  'dashboard',
  'event',
  'reason',
  'release',
  'startedBy',
  'status',
  'step',
  'time',
  'version',
];

describe('release notifications', () => {
  let world: World;
  let dayshift: Dayshift;
  let json: Receiver;
  let slack: Receiver;
  let flaky: Receiver;

  before(async () => {
    json = await startReceiver();
    slack = await startReceiver();
    // The first attempt gets a 500, the retry a 200.
    flaky = await startReceiver((res, n) => {
      res.statusCode = n === 1 ? 500 : 200;
      res.end();
    });
    world = await makeWorld({
      release: {
        hooks: {
          // A failing step for "broken", a step still running at a stop for "slow".
          before:
            'case "$DAYSHIFT_VERSION" in broken) echo "the schema check failed" >&2; exit 3;; slow) sleep 60;; esac',
        },
        clusters: { 'prod-b': { approval: 'manual' } },
        notify: [
          { url: json.url, headers: { authorization: 'Bearer hook-token' } },
          { url: slack.url, format: 'slack' },
          { url: flaky.url, events: ['started'], retries: 2 },
        ],
      },
    });
    await setPublicUrl(world, PUBLIC_URL);
    dayshift = await startInProcess(world);
    await allUp(dayshift);
  });
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
    for (const r of [json, slack, flaky]) await r?.close();
  });

  it('tells the start, the wait for approval with the dashboard link, and the success, as JSON and for Slack', async () => {
    const id = await start(dayshift, '2.0');
    const started = await noticeOf(json, id, 'started');
    assert.deepEqual(Object.keys(started).sort(), FULL_KEYS, 'the JSON document has its stable keys');
    assert.equal(started.version, '2.0');
    assert.equal(started.status, 'running');
    assert.deepEqual(started.clusters, ['prod-a', 'prod-b']);
    assert.equal(json.requests[0]?.headers.authorization, 'Bearer hook-token', 'the configured headers are sent');
    assert.match(String(json.requests[0]?.headers['content-type']), /^application\/json/);

    await releaseIn(dayshift, ['awaiting-approval']);
    const waiting = await noticeOf(json, id, 'awaiting-approval');
    assert.equal(
      waiting.dashboard,
      'https://dayshift.example.test/ops/#release',
      'admin.public_url is where the link points',
    );
    assert.equal(waiting.cluster, 'prod-b', "prod-a's automatic approval waits for nobody and is not told");
    assert.equal(waiting.step?.id, 'prod-b:approval');
    assert.equal(waiting.status, 'awaiting-approval');

    const approved = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/approve');
    assert.equal(approved.status, 200);
    const done = await releaseIn(dayshift, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded', done.reason);
    await noticeOf(json, id, 'succeeded');
    assert.deepEqual(eventsOf(json, id), ['started', 'awaiting-approval', 'succeeded'], 'each event once, in order');

    const messages = await until('three Slack messages', () =>
      slack.requests.length >= 3
        ? slack.requests.map((r) => r.body as { text: string; blocks: { type: string; text?: { text: string } }[] })
        : undefined,
    );
    assert.equal(messages.length, 3);
    for (const m of messages) {
      assert.equal(typeof m.text, 'string');
      assert.equal(m.blocks[0]?.type, 'section');
    }
    assert.match(messages[0]!.text, /Release of version \*2\.0\* started \(prod-a, prod-b\)/);
    assert.match(
      messages[1]!.text,
      /waits for approval: manual approval \(`dayshift release approve`\) for prod-b\. https:\/\/dayshift\.example\.test\/ops\/#release$/,
    );
    assert.match(
      messages[1]!.blocks[0]!.text!.text,
      /<https:\/\/dayshift\.example\.test\/ops\/#release\|Approve in the dashboard>/,
    );
    assert.match(messages[2]!.text, /succeeded/);
  });

  it('retries a receiver that answers 500, and counts what it sent', async () => {
    await until('the retry of the flaky receiver', () => (flaky.requests.length >= 2 ? true : undefined), 30_000);
    assert.equal(flaky.requests.length, 2, 'one failed attempt, one retry, then nothing: it only takes "started"');
    assert.deepEqual(
      flaky.requests.map((r) => r.body.event),
      ['started', 'started'],
    );
    await until('the counts', () => (dayshift.webhooks.counts.sent >= 7 ? true : undefined));
    assert.equal(
      await metric(dayshift, /^dayshift_notifications_total\{result="sent"\} (\d+)$/m),
      7,
      '3 JSON + 3 Slack + 1 flaky',
    );
    assert.equal(await metric(dayshift, /^dayshift_notifications_total\{result="failed"\} (\d+)$/m), 0);
    assert.equal(await metric(dayshift, /^dayshift_notification_retries_total (\d+)$/m), 1);
  });

  it('does not tell the wait for approval again after a restart', async () => {
    const id = await start(dayshift, '3.0');
    await noticeOf(json, id, 'awaiting-approval');
    await dayshift.close(1000);
    dayshift = await startInProcess(world);
    await releaseIn(dayshift, ['awaiting-approval']);
    const approved = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/approve');
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal((await releaseIn(dayshift, ['succeeded', 'failed'])).state, 'succeeded');
    await noticeOf(json, id, 'succeeded');
    // One queue per receiver keeps order: a repeated wait would have arrived before the success.
    assert.deepEqual(eventsOf(json, id), ['started', 'awaiting-approval', 'succeeded']);
  });

  it('tells a failing step with its reason, then the rollback of the abort', async () => {
    const id = await start(dayshift, 'broken');
    const failed = await noticeOf(json, id, 'step-failed');
    assert.equal(failed.status, 'failed');
    assert.equal(failed.step?.state, 'failed');
    assert.equal(failed.step?.id, 'before');
    assert.match(failed.reason ?? '', /exited with 3: the schema check failed/);
    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort');
    assert.equal(aborted.status, 200);
    const rolledBack = await noticeOf(json, id, 'rolled-back');
    assert.equal(rolledBack.status, 'aborted');
    assert.match(rolledBack.reason ?? '', /aborted by .*traffic restored/);
    assert.deepEqual(eventsOf(json, id), ['started', 'step-failed', 'rolled-back']);
  });

  it('tells a release interrupted by a stop once, and its abort after the restart', async () => {
    const id = await start(dayshift, 'slow');
    await until('the before hook running', () =>
      dayshift.conductor.current()?.steps[0]?.state === 'running' ? true : undefined,
    );
    await dayshift.close(1000);
    const interrupted = await noticeOf(json, id, 'interrupted');
    assert.equal(interrupted.status, 'interrupted');
    assert.equal(interrupted.step?.state, 'running', 'the step it stopped in');
    dayshift = await startInProcess(world);
    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort');
    assert.equal(aborted.status, 200, JSON.stringify(aborted.body));
    await noticeOf(json, id, 'rolled-back');
    assert.deepEqual(eventsOf(json, id), ['started', 'interrupted', 'rolled-back']);
  });
});

describe('release notifications to a receiver that hangs or is down', () => {
  let world: World;
  let dayshift: Dayshift;
  let hanging: Receiver;
  let json: Receiver;
  let closed = false;

  before(async () => {
    hanging = await startReceiver(() => undefined);
    json = await startReceiver();
    const down = `http://127.0.0.1:${await freePort()}/nobody-listens`;
    world = await makeWorld({
      release: {
        notify: [
          // Were sending in the release's way, a 10-minute attempt would hold it far past the test's deadline.
          { url: hanging.url, timeout: '10m' },
          { url: down, retries: 1 },
          { url: json.url },
        ],
      },
    });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
  });
  after(async () => {
    if (!closed) await dayshift?.close(1000);
    await world?.close();
    await hanging?.close();
    await json?.close();
  });

  it('finishes the release on time, counts the failures, and stops without waiting for the receiver', async () => {
    const startedAt = Date.now();
    const id = await start(dayshift, '2.0');
    const done = await releaseIn(dayshift, ['succeeded', 'failed'], 90_000);
    assert.equal(done.state, 'succeeded', done.reason);
    assert.ok(Date.now() - startedAt < 90_000);
    assert.equal(
      hanging.requests.length,
      1,
      'the hanging receiver holds the first message: the others wait in its queue',
    );
    await noticeOf(json, id, 'succeeded');
    assert.deepEqual(eventsOf(json, id), ['started', 'succeeded'], 'the healthy receiver is not held up by the others');
    // The receiver that is down: each message is tried twice, then counted as failed.
    await until(
      'the failures counted',
      async () =>
        (await metric(dayshift, /^dayshift_notifications_total\{result="failed"\} (\d+)$/m)) >= 2 ? true : undefined,
      30_000,
    );
    assert.equal(await metric(dayshift, /^dayshift_notification_retries_total (\d+)$/m), 2);

    const stopping = Date.now();
    closed = true;
    await dayshift.close(1000);
    assert.ok(Date.now() - stopping < 15_000, `stopping took ${Date.now() - stopping} ms`);
    assert.equal(
      dayshift.webhooks.counts.dropped,
      2,
      'the message in flight and the one behind it, dropped at the stop',
    );
  });
});

const etcd = etcdBinary();

describe('release notifications with several instances through etcd', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let apps: DemoApps;
  let json: Receiver;
  const instances: TestDayshift[] = [];

  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
    apps = await startDemoApps('1.0');
    json = await startReceiver();
  });
  after(async () => {
    for (const instance of instances) await instance.stop();
    await apps?.close();
    await cluster?.stop();
    await json?.close();
  });

  it('sends each event once, from the instance that runs the release, also when another one takes it over', async () => {
    const members = (name: string) =>
      apps.apps.filter((a) => a.options.cluster === name).map((a) => ({ url: a.url, route: a.options.member }));
    const config = {
      store: {
        type: 'etcd',
        endpoints: cluster.endpoints,
        prefix: `/dayshift/notify-${process.pid}/`,
        lease_ttl: '2s',
      },
      health: { path: '/health', interval: '250ms', rise: 1, fall: 1 },
      drain: { session_idle: '500ms' },
      clusters: { 'prod-a': { members: members('prod-a') }, 'prod-b': { members: members('prod-b') } },
      sites: { public: { hosts: ['localhost'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
      release: {
        health: { timeout: '20s', stable: '300ms' },
        approval: 'auto',
        clusters: { 'prod-b': { approval: 'manual' } },
        notify: [{ url: json.url }],
      },
    };
    const a = await startTestDayshift(config);
    instances.push(a);
    const b = await startTestDayshift(config);
    instances.push(b);

    const started = await a.api<Release>('POST', '/api/release/start', { version: '2.0' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const id = started.body.id;
    await noticeOf(json, id, 'awaiting-approval');
    await until('instance b to follow the wait', async () =>
      (await b.api<Release>('GET', '/api/release')).body.state === 'awaiting-approval' ? true : undefined,
    );
    // a stops; b takes the waiting release over: the journal says interrupted, then it waits again.
    instances.splice(instances.indexOf(a), 1);
    await a.stop();
    await until(
      'instance b to take the release over',
      async () => ((await b.api('POST', '/api/release/resume')).status === 200 ? true : undefined),
      20_000,
    );
    await until('the wait on instance b', async () =>
      (await b.api<Release>('GET', '/api/release')).body.state === 'awaiting-approval' ? true : undefined,
    );
    assert.equal((await b.api('POST', '/api/release/approve')).status, 200);
    await noticeOf(json, id, 'succeeded');
    assert.deepEqual(
      eventsOf(json, id),
      ['started', 'awaiting-approval', 'interrupted', 'succeeded'],
      'the wait is not told again after the takeover',
    );
  });
});
