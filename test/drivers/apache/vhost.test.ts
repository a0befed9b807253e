// The origin layout keeps each <Proxy balancer://...> inside its <VirtualHost>. httpd's balancer-manager
// then sees only the balancers of the VirtualHost it is in: the driver says so and how to fix it, and with
// driver.host it reaches the manager in that VirtualHost, sending a Referer httpd accepts (no AH10187).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apacheDriverSchema } from '../../../src/config/driver-schema.js';
import { clusterSchema } from '../../../src/config/schema.js';
import { ApacheDriver } from '../../../src/drivers/apache/driver.js';
import { startBackend, type Backend } from '../../support/backends.js';
import { startHttpd, type Httpd } from '../../support/httpd.js';
import { findExecutable } from '../../support/peers.js';

const apache2 = findExecutable('apache2');
const missing = apache2
  ? false
  : 'apache2 not found: install the Debian package apache2 (apt-get install apache2) to run this test';
if (missing && process.env.CI === 'true') throw new Error(missing);

describe('a balancer inside a VirtualHost (the origin layout)', { skip: missing }, () => {
  let backends: Backend[] = [];
  let httpd: Httpd;
  const manager = [
    '<Location /balancer-manager>',
    '  SetHandler balancer-manager',
    '  Require ip 127.0.0.1',
    '</Location>',
  ].join('\n');

  before(async () => {
    backends = await Promise.all(['a1', 'a2'].map(startBackend));
    httpd = await startHttpd(apache2!, {
      body: [
        'BalancerPersist On',
        // The first VirtualHost answers unknown names (127.0.0.1): a manager that sees no balancer.
        '<VirtualHost 127.0.0.1:{PORT}>',
        '  ServerName lb.internal',
        manager,
        '</VirtualHost>',
        '<VirtualHost 127.0.0.1:{PORT}>',
        '  ServerName example.com',
        '  <Proxy balancer://web-prod>',
        ...backends.map((b) => `    BalancerMember ${b.url} route=${b.name}`),
        '  </Proxy>',
        '  ProxyPass /balancer-manager !',
        '  ProxyPass / balancer://web-prod/',
        manager,
        '</VirtualHost>',
      ].join('\n'),
    });
  });
  after(async () => {
    await httpd?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  const clusters = () => ({
    'prod-a': clusterSchema.parse({ members: backends.map((b) => ({ url: b.url, route: b.name })) }),
  });

  test('a manager that cannot see the balancer: the error says why and how to fix it', async () => {
    const driver = new ApacheDriver(
      apacheDriverSchema.parse({ type: 'apache', url: httpd.managerUrl, balancer: 'web-prod' }),
      clusters(),
    );
    await assert.rejects(
      driver.status(),
      /has no balancer "web-prod"; it has: \(none\).*inside a <VirtualHost>, move it out to the server level.*driver\.host to its ServerName/s,
    );
  });

  test('driver.host reaches the manager in the VirtualHost; its reads and changes leave no AH10187', async () => {
    const driver = new ApacheDriver(
      apacheDriverSchema.parse({ type: 'apache', url: httpd.managerUrl, balancer: 'web-prod', host: 'example.com' }),
      clusters(),
    );
    assert.deepEqual(
      (await driver.status()).clusters.map((c) => c.members.map((m) => m.admin)),
      [['ready', 'ready']],
    );
    await driver.setMemberState('prod-a', 'a1', 'draining');
    assert.deepEqual(
      (await driver.status()).clusters.map((c) => c.members.map((m) => m.admin)),
      [['draining', 'ready']],
    );
    await driver.setMemberState('prod-a', 'a1', 'ready');
    assert.doesNotMatch(await httpd.log(), /AH10187/);
  });
});
