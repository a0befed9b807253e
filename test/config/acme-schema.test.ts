import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';

const base = {
  listen: { http: '127.0.0.1:8080', https: '127.0.0.1:8443' },
  clusters: { a: { members: [{ url: 'http://127.0.0.1:9001' }] } },
};
const acme = { directory: 'https://acme.example/directory', email: 'ops@example.com' };

function problems(config: unknown): string {
  const result = configSchema.safeParse(config);
  assert.equal(result.success, false, 'expected the config to be refused');
  return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
}

test('a site on tls.acme with the acme section parses, renew_before defaulting to 30 days', () => {
  const config = configSchema.parse({
    ...base,
    acme,
    sites: { shop: { hosts: ['shop.example'], routes: [{ clusters: ['a'] }], tls: { acme: true } } },
  });
  assert.deepEqual(config.sites.shop!.tls, { acme: true });
  assert.equal(config.acme?.renew_before, 30 * 24 * 3600_000);
  assert.equal(
    configSchema.parse({ ...base, acme: { ...acme, renew_before: '10d' }, sites: {} }).acme?.renew_before,
    10 * 24 * 3600_000,
  );
});

test('tls.acme refuses wildcard hosts, a missing acme section and an external driver, saying what to do', () => {
  const site = (hosts: string[]) => ({ shop: { hosts, routes: [{ clusters: ['a'] }], tls: { acme: true } } });
  assert.match(
    problems({ ...base, acme, sites: site(['shop.example', '*.shop.example']) }),
    /sites\.shop\.hosts\.1: host "\*\.shop\.example" cannot get a certificate by ACME .*name the hosts exactly/,
  );
  assert.match(
    problems({ ...base, acme, sites: site(['*']) }),
    /sites\.shop\.hosts\.0: host "\*" cannot get a certificate by ACME/,
  );
  assert.match(
    problems({ ...base, sites: site(['shop.example']) }),
    /sites\.shop\.tls\.acme: tls\.acme needs the top-level acme section/,
  );
  assert.match(
    problems({
      ...base,
      acme,
      driver: { type: 'haproxy', socket: '/run/haproxy.sock', backend: 'www' },
      sites: site(['shop.example']),
    }),
    /tls\.acme needs the built-in proxy/,
  );
  assert.match(
    problems({
      ...base,
      sites: { shop: { hosts: ['shop.example'], routes: [{ clusters: ['a'] }], tls: { acme: false } } },
    }),
    /sites\.shop\.tls/,
  );
  assert.match(
    problems({ ...base, acme: { directory: 'not a url', email: 'ops@example.com' }, sites: {} }),
    /acme\.directory/,
  );
});
