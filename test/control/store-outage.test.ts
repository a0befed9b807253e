// A real etcd stopped and restarted under a running instance: the outage is logged once and its end
// once (with its length), not every publishing round; control commands exit 5 ("unreachable") with a
// message that says the store is out of reach and nothing changed.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { StatusReport } from '../../src/observe/status-report.js';
import { runCli } from '../support/cli.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

const etcd = etcdBinary();

interface LogLine {
  level: number;
  msg: string;
  outageMs?: number;
  failedRounds?: number;
}

describe('etcd stopped and restarted under a running instance', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let member: TestMember;
  let dayshift: TestDayshift;
  const logged: LogLine[] = [];

  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
    member = await startMember('a1', (_req, res) => res.end('a1'));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    dayshift = await startTestDayshift(
      {
        store: {
          type: 'etcd',
          endpoints: cluster.endpoints,
          prefix: `/dayshift/outage-${process.pid}/`,
          lease_ttl: '2s',
          request_timeout: '500ms',
          dial_timeout: '1s',
        },
        clusters: {
          'prod-a': { members: [{ url: member.url, route: 'a1' }] },
          'prod-b': { members: [{ url: member.url, route: 'b1' }] },
        },
        health: { enabled: false },
        sites: { public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
      },
      undefined,
      pino({ level: 'info' }, sink),
    );
  });
  after(async () => {
    await dayshift?.stop();
    await member?.close();
    await cluster?.stop();
  });

  const about = (text: RegExp) => logged.filter((l) => text.test(l.msg));

  test('one warning when the outage starts, one line with its length when it ends; commands exit 5 meanwhile', async () => {
    const [name] = cluster.memberNames;
    await cluster.kill(name!);
    await waitFor(() => about(/store is unreachable/).length > 0, 10_000, 'the outage to be logged');

    const admin = ['--admin', dayshift.adminUrl, '--token', dayshift.token];
    for (const command of [
      ['out', 'prod-b'],
      ['drain', 'prod-b'],
      ['release', 'start', '--version', '2'],
    ]) {
      const ran = await runCli([...command, ...admin]);
      assert.equal(ran.code, 5, `${command.join(' ')}: ${ran.stdout}${ran.stderr}`);
      assert.match(
        ran.stderr,
        /^error: (the change was not made|the store is unreachable): etcd \(http:\/\/127\.0\.0\.1:\d+\): \w+ .* failed: /,
      );
      assert.match(ran.stderr, /The store is unreachable: Dayshift keeps serving with the state it has/);
    }
    // The file store → etcd migration names the store as unreachable too.
    const migrate = await runCli(['store', 'migrate', '--from', 'file', '--to', 'etcd', '-c', dayshift.configFile]);
    assert.equal(migrate.code, 5, migrate.stdout + migrate.stderr);
    assert.match(migrate.stderr, /etcd \(http:\/\/127\.0\.0\.1:\d+\): connect/);
    assert.equal((await request(dayshift.port)).status, 200, 'still serving');
    assert.equal(
      (await dayshift.api<StatusReport>('GET', '/api/status')).body.clusters[1]!.traffic,
      'live',
      'nothing applied',
    );

    await cluster.restart(name!);
    await waitFor(() => about(/store is reachable again/).length > 0, 20_000, 'the end of the outage to be logged');
    const [end] = about(/store is reachable again/);
    // Publishing runs twice a second: the outage spanned several failed rounds, yet was logged once.
    assert.ok(end!.failedRounds! >= 3, `failed rounds: ${end!.failedRounds}`);
    assert.ok(end!.outageMs! >= 1000, `outage: ${end!.outageMs} ms`);
    assert.match(end!.msg, /reachable again after \d+(\.\d+)?(ms|s)\b/);
    assert.equal(
      about(/store is unreachable/).filter((l) => l.level === 40).length,
      1,
      'one warning for the whole outage',
    );
    assert.equal(about(/could not publish/).length, 0, 'no warning per round');

    await waitFor(
      async () => (await dayshift.api('POST', '/api/clusters/prod-b/traffic', { state: 'draining' })).status === 200,
      20_000,
      'etcd to accept changes again',
    );
    assert.equal(about(/store is reachable again/).length, 1);
  });
});
