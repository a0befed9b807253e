import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../src/config/load.js';
import { storeSchema } from '../../src/config/store-schema.js';

test('an etcd store gets its defaults and durations in milliseconds', () => {
  const store = storeSchema.parse({
    type: 'etcd',
    endpoints: ['http://10.0.0.1:2379'],
    prefix: '/dayshift/prod/',
    dial_timeout: '3s',
    lease_ttl: '15s',
  });
  assert.deepEqual(store, {
    type: 'etcd',
    endpoints: ['http://10.0.0.1:2379'],
    prefix: '/dayshift/prod/',
    dial_timeout: 3000,
    request_timeout: 2000,
    lease_ttl: 15_000,
  });
  assert.deepEqual(storeSchema.parse({ type: 'file' }), { type: 'file' });
});

test('bad etcd settings are refused with the reason', () => {
  const problems = (value: unknown) => {
    const result = storeSchema.safeParse(value);
    assert.equal(result.success, false);
    return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
  };
  assert.match(
    problems({ type: 'etcd', endpoints: ['http://a:2379', 'https://b:2379'] }),
    /endpoints: endpoints must be all http:\/\/ or all https:\/\//,
  );
  assert.match(
    problems({ type: 'etcd', endpoints: ['http://a:2379'], tls: { ca: 'ca.pem' } }),
    /tls: tls needs https:\/\/ endpoints/,
  );
  assert.match(
    problems({ type: 'etcd', endpoints: ['https://a:2379'], tls: { cert: 'c.pem' } }),
    /tls\.cert and tls\.key go together/,
  );
  assert.match(problems({ type: 'etcd', endpoints: ['a:2379'] }), /expected an etcd client URL/);
  assert.match(problems({ type: 'etcd', endpoints: [] }), /at least one etcd endpoint/);
  assert.match(problems({ type: 'etcd', endpoints: ['http://a:2379'], prefix: 'no-slash' }), /key prefix/);
  assert.match(problems({ type: 'redis' }), /type/);
});

test('the multi-instance example loads with its etcd store', async () => {
  const { config } = await loadConfigFile(
    fileURLToPath(new URL('../../../examples/multi-instance/dayshift.yaml', import.meta.url)),
  );
  assert.equal(config.store?.type, 'etcd');
  assert.ok(config.store?.type === 'etcd' && config.store.endpoints.length === 3 && config.store.lease_ttl === 10_000);
});
