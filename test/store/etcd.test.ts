import { after, before, describe } from 'node:test';
import { EtcdStore } from '../../src/store/etcd.js';
import { findExecutable } from '../support/peers.js';
import { EtcdCluster } from '../support/etcd.js';
import { storeContract } from './store-contract.js';

const etcdBinary = findExecutable('etcd');

describe('etcd store, single node', { skip: etcdBinary ? false : 'etcd not found: apt-get install etcd-server' }, () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await EtcdCluster.start(etcdBinary!, 1);
  });
  after(() => etcd?.stop());

  storeContract('etcd', async () => ({
    open: () => EtcdStore.open({ endpoints: etcd.endpoints, prefix: '/dayshift/test/' }),
    multiClient: true,
  }));
});
