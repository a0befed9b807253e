// Shadow traffic on two Dayshift instances sharing one real etcd: a shadow started on one makes the other
// copy too, each instance compares its own copies, and a stop on either ends the copies on both.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { ShadowReport } from '../../src/control/shadow.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

const etcd = etcdBinary();

describe('shadow traffic across instances through etcd', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let members: TestMember[] = [];
  let one: TestDayshift;
  let two: TestDayshift;
  const get = (ds: TestDayshift, path: string) => request(ds.port, { host: 'www.example.test', path });
  const copies = () => members[0]!.received.filter((r) => r.headers['dayshift-shadow'] === '1').map((r) => r.url);
  const report = async (ds: TestDayshift) => (await ds.api<ShadowReport>('GET', '/api/shadow')).body;

  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
    members = await Promise.all(
      ['a1', 'b1'].map((route) =>
        startMember(route, (req: http.IncomingMessage, res: http.ServerResponse) => {
          req.resume();
          res.end(route);
        }),
      ),
    );
    const config = {
      store: {
        type: 'etcd',
        endpoints: cluster.endpoints,
        prefix: `/dayshift/shadow-${process.pid}/`,
        lease_ttl: '2s',
        request_timeout: '500ms',
        dial_timeout: '1s',
      },
      clusters: {
        'prod-a': { members: [{ url: members[0]!.url, route: 'a1' }], traffic: 'out' },
        'prod-b': { members: [{ url: members[1]!.url, route: 'b1' }] },
      },
      health: { enabled: false },
      sites: { public: { hosts: ['www.example.test'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] } },
    };
    one = await startTestDayshift(config);
    two = await startTestDayshift(config);
  });
  after(async () => {
    await one?.stop();
    await two?.stop();
    await Promise.all(members.map((m) => m.close()));
    await cluster?.stop();
  });

  test('a shadow started on one instance copies on both; figures are per instance; a stop on the other ends it', async () => {
    assert.equal((await one.api('POST', '/api/shadow', { cluster: 'prod-a', percent: 100, for: '10m' })).status, 200);
    assert.equal((await get(one, '/from-one')).body, 'b1');
    await waitFor(
      async () => {
        assert.equal((await get(two, '/from-two')).body, 'b1', 'the live answer on instance two');
        return copies().includes('/from-two');
      },
      10_000,
      'instance two to copy',
    );
    await waitFor(async () => (await report(one)).copies.compared === 1, 5000, 'instance one to compare its copy');
    const figures = await report(one);
    assert.equal(figures.copies.sent, 1, "instance one counts its own copies, not instance two's");
    assert.ok((await report(two)).copies.sent >= 1);

    assert.equal((await two.api('DELETE', '/api/shadow')).status, 200);
    await waitFor(async () => (await report(one)).active === false, 10_000, 'instance one to take the stop');
    const before = copies().length;
    await get(one, '/after-stop');
    await get(two, '/after-stop');
    assert.equal(copies().length, before, 'no instance copies after the stop');
  });
});
