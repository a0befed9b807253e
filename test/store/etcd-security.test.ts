// EtcdStore's TLS (CA, client certificate) and user/password options against a real etcd set up that way.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd3, Range } from 'etcd3';
import { EtcdStore } from '../../src/store/etcd.js';
import type { Store } from '../../src/store/store.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { EtcdCluster, etcdBinary, makeTestCertificates, type TestCertificates } from '../support/etcd.js';
import { findPeer } from '../support/peers.js';
import { eventually } from './store-contract.js';

const etcd = etcdBinary();
const openssl = findPeer('openssl', 'openssl');

/** What every working store must do here: write, read back, see its own write through a watch, lock. */
async function exercise(store: Store): Promise<void> {
  const seen: string[] = [];
  const stop = store.watch('state/', (key) => seen.push(key));
  await eventually('watch sees a write', async () => {
    await store.put('state/doc', { ok: true });
    return seen.includes('state/doc');
  });
  stop();
  assert.deepEqual((await store.get('state/doc'))?.value, { ok: true });
  await store.publish('instances/me', { up: true }, 5);
  const lock = await store.lock('release', 'me', 5);
  await lock.release();
}

describe('etcd store over TLS with client certificates', { skip: etcd.skip || openssl.skip }, () => {
  let cluster: EtcdCluster;
  let certs: TestCertificates;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-etcd-tls-'));
    certs = await makeTestCertificates(openssl.path!, dir);
    cluster = await EtcdCluster.start(etcd.path!, 1, { tls: certs });
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('with the CA and a client certificate, everything works', async () => {
    assert.match(cluster.endpoints[0]!, /^https:/);
    const store = await EtcdStore.open({
      endpoints: cluster.endpoints,
      prefix: '/dayshift/tls/',
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    try {
      await exercise(store);
    } finally {
      await store.close();
    }
  });

  test('without a client certificate, or without the CA, open() fails with StoreUnavailableError', async () => {
    await assert.rejects(
      EtcdStore.open({
        endpoints: cluster.endpoints,
        prefix: '/dayshift/tls/',
        tls: { ca: certs.ca },
        dialTimeoutMs: 2000,
      }),
      StoreUnavailableError,
    );
    await assert.rejects(
      EtcdStore.open({
        endpoints: cluster.endpoints,
        prefix: '/dayshift/tls/',
        tls: { cert: certs.clientCert, key: certs.clientKey },
        dialTimeoutMs: 2000,
      }),
      StoreUnavailableError,
    );
  });

  test('an unreadable certificate file is named in the error', async () => {
    await assert.rejects(
      EtcdStore.open({ endpoints: cluster.endpoints, prefix: '/x/', tls: { ca: join(dir, 'missing.pem') } }),
      (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError);
        assert.match(err.message, /cannot read tls\.ca file .*missing\.pem/);
        return true;
      },
    );
  });
});

describe('etcd store with user/password authentication', { skip: etcd.skip }, () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await EtcdCluster.start(etcd.path!, 1);
    // etcd's own set-up: a root user (required to turn auth on) and a user that may use one prefix only.
    const admin = new Etcd3({ hosts: cluster.endpoints });
    try {
      await admin.role('root').create();
      await (await admin.user('root').create('root-secret')).addRole('root');
      await admin.role('dayshift').create();
      await admin.role('dayshift').grant({ permission: 'Readwrite', range: Range.prefix('/dayshift/auth/') });
      await (await admin.user('dayshift').create('s3cret')).addRole('dayshift');
      await admin.auth.authEnable({});
    } finally {
      admin.close();
    }
  });
  after(() => cluster?.stop());

  test('with the right user and password, everything works under the granted prefix', async () => {
    const store = await EtcdStore.open({
      endpoints: cluster.endpoints,
      prefix: '/dayshift/auth/',
      auth: { username: 'dayshift', password: 's3cret' },
    });
    try {
      await exercise(store);
    } finally {
      await store.close();
    }
  });

  test('a wrong password, or a prefix the user may not touch, fails with StoreUnavailableError saying why', async () => {
    await assert.rejects(
      EtcdStore.open({
        endpoints: cluster.endpoints,
        prefix: '/dayshift/auth/',
        auth: { username: 'dayshift', password: 'wrong' },
      }),
      (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError);
        assert.match(err.message, /authentication failed/);
        return true;
      },
    );
    await assert.rejects(
      EtcdStore.open({
        endpoints: cluster.endpoints,
        prefix: '/dayshift/other/',
        auth: { username: 'dayshift', password: 's3cret' },
      }),
      (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError);
        assert.match(err.message, /permission denied/);
        return true;
      },
    );
  });
});
