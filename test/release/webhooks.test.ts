import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { WebhookSender } from '../../src/release/webhooks.js';
import { until } from './harness.js';

test('a receiver that never answers: its queue stops at 100 messages, and a stop drops the rest at once', async () => {
  let received = 0;
  const server = createServer((req) => {
    received++;
    req.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const sender = new WebhookSender(pino({ level: 'silent' }));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    // One in flight, 100 waiting behind it, the last one dropped.
    for (let i = 0; i < 102; i++)
      sender.send({
        url,
        headers: {},
        body: JSON.stringify({ i }),
        timeoutMs: 600_000,
        retries: 3,
        about: `message ${i}`,
      });
    assert.equal(sender.counts.dropped, 1);
    await until('the first message to reach the receiver', () => (received === 1 ? true : undefined), 10_000);
    const stopping = Date.now();
    await sender.close(0);
    assert.ok(Date.now() - stopping < 5000, `closing took ${Date.now() - stopping} ms`);
    assert.deepEqual(sender.counts, { sent: 0, failed: 0, dropped: 102 });
    assert.equal(received, 1, 'nothing else was sent');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
