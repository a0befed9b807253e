// Previews on two Dayshift instances sharing one real etcd: a link made on one pins on the other, and a
// revocation on one ends the preview on the other.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { PreviewLink } from '../../src/control/previews.js';
import { EtcdCluster, etcdBinary } from '../support/etcd.js';
import { startMember, type TestMember } from '../support/members.js';
import { request, waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

const etcd = etcdBinary();

describe('previews across instances through etcd', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  let members: TestMember[] = [];
  let one: TestDayshift;
  let two: TestDayshift;
  const get = (ds: TestDayshift, cookie?: string) =>
    request(ds.port, { host: 'www.example.test', ...(cookie ? { headers: { cookie } } : {}) });

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
        prefix: `/dayshift/preview-${process.pid}/`,
        lease_ttl: '2s',
        request_timeout: '500ms',
        dial_timeout: '1s',
      },
      // Shared by the instances, as their sticky cookies need: each verifies the other's links.
      cookie_secret: 'preview-instances-secret-0123456789',
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

  test('a preview made on one instance pins on the other, and a revocation on one ends it on the other', async () => {
    const link = (await one.api<PreviewLink>('POST', '/api/previews', { cluster: 'prod-a', for: '10m' })).body;
    const token = new URL(link.url).searchParams.get('token')!;
    const cookie = `DAYSHIFT_PREVIEW=${token}`;
    assert.equal((await get(one, cookie)).body, 'a1', 'the instance that made it pins');
    await waitFor(async () => (await get(two, cookie)).body === 'a1', 10_000, 'instance two to take the preview');
    assert.equal((await get(two)).body, 'b1', 'the public on instance two still gets prod-b');

    assert.equal((await one.api('DELETE', `/api/previews/${link.id}`)).status, 200);
    await waitFor(
      async () => (await get(two, cookie)).body === 'b1',
      10_000,
      'instance two to end the revoked preview',
    );
    assert.equal((await get(one, cookie)).body, 'b1');
    assert.deepEqual((await two.api<unknown[]>('GET', '/api/previews')).body, [], 'instance two lists none');
    const revokedAgain = await two.api('DELETE', `/api/previews/${link.id}`);
    assert.equal(revokedAgain.status, 404, 'instance two knows it is gone');
  });
});
