import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemberRuntime } from '../../src/balance/member.js';
import { memberSchema } from '../../src/config/schema.js';
import { percentile } from '../../src/control/sampler.js';
import type { Transport } from '../../src/proxy/transport.js';

it('reports latency per bucket, as MemberStats documents, so percentiles come out right', () => {
  const member = new MemberRuntime('c/1', 'c', '1', memberSchema.parse({ url: 'http://127.0.0.1:1' }), {} as Transport);
  for (let i = 0; i < 99; i++) member.observe(200, 0.5);
  member.observe(200, 300);
  const { latencyBuckets } = member.stats(Date.now());
  assert.equal(latencyBuckets.reduce((a, b) => a + b, 0), 100, 'each response counted once');
  assert.equal(latencyBuckets[0], 99);
  assert.ok(percentile(latencyBuckets, 0.5)! <= 1, 'median of sub-millisecond responses is under 1 ms');
});
