// A Dayshift-like process for etcd tests, run with `node etcd-child.js '<json>'`: it opens an EtcdStore,
// publishes its instance figures, takes a lock, prints "ready" and then waits to be killed. Tests kill it
// with SIGKILL to check that etcd drops what it held once its leases expire.
import { publishInstance, type InstanceFigures } from '../../src/observe/instances.js';
import { EtcdStore } from '../../src/store/etcd.js';

interface ChildArgs {
  endpoints: string[];
  prefix: string;
  instanceId: string;
  lockName: string;
  ttlSeconds: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const store = await EtcdStore.open({ endpoints: args.endpoints, prefix: args.prefix });
const figures: InstanceFigures = {
  id: args.instanceId,
  host: 'test',
  pid: process.pid,
  version: 'test',
  at: new Date().toISOString(),
  members: { 'blue/a1': { inFlight: 2, sessions: 5, tunnels: 1, health: 'up' } },
};
await publishInstance(store, figures, args.ttlSeconds);
await store.lock(args.lockName, args.instanceId, args.ttlSeconds);
process.stdout.write('ready\n');
// Keeps the event loop alive until the test kills this process.
setInterval(() => undefined, 60_000);
