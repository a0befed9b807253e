import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../../src/config/load.js';
import { ajpOptionsFromMember, createAjpTransport } from '../../../src/proxy/ajp/transport.js';

const example = fileURLToPath(new URL('../../../../examples/tomcat-ajp/dayshift.yaml', import.meta.url));

test('the Tomcat/AJP example loads, and each member becomes an AJP transport with its secret and packet size', async () => {
  const { config } = await loadConfigFile(example);
  const members = Object.values(config.clusters).flatMap((c) => c.members);
  assert.equal(members.length, 8);
  const settings = {
    connectTimeoutMs: config.timeouts.connect,
    firstByteTimeoutMs: config.timeouts.first_byte,
    idleTimeoutMs: config.timeouts.idle,
    responseHeadBytes: config.limits.response_head,
    poolIdle: config.limits.pool_idle,
    poolMax: config.limits.pool_max,
    queueMax: config.limits.queue,
    queueTimeoutMs: config.timeouts.connect,
  };
  const b4 = members.find((m) => m.route === 'b4')!;
  assert.deepEqual(ajpOptionsFromMember(b4, settings), {
    secret: 'change-me-prod-b',
    packetSize: 16384,
    connectTimeoutMs: 5000,
    firstByteTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    maxConnections: 512,
    maxQueue: 1024,
    queueTimeoutMs: 5000,
    maxIdle: 64,
  });
  for (const member of members) {
    assert.equal(member.packet_size, member.route === 'b4' ? 16384 : 8192);
    const transport = createAjpTransport(new URL(member.url), ajpOptionsFromMember(member, settings));
    assert.match(transport.host, /^web-\d\.prod-[ab]\.example\.com$/);
    assert.equal(transport.port, 8009);
    await transport.close();
  }
});
