import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStatus } from '../../src/cli/status.js';
import type { StatusReport } from '../../src/observe/status-report.js';

const site = (
  name: string,
  certificate?: StatusReport['sites'][number]['certificate'],
): StatusReport['sites'][number] => ({
  name,
  hosts: [`${name}.example`],
  routes: [{ path: '/', clusters: ['a'], balance: 'round-robin', traffic: 'pinned' }],
  ...(certificate ? { certificate } : {}),
});

test('dayshift status lists each ACME certificate with its expiry, or why there is none yet', () => {
  const report: StatusReport = {
    driver: 'builtin',
    store: 'file:/tmp/x',
    config: 'dayshift.yaml',
    at: '2026-12-06T00:00:00.000Z',
    sites: [
      site('shop', {
        hosts: ['shop.example', 'www.shop.example'],
        notAfter: '2027-03-06T00:00:00.000Z',
        renewAt: '2027-02-04T00:00:00.000Z',
        issuer: 'Test CA',
      }),
      site('blog', {
        hosts: ['blog.example'],
        lastError: 'connect ECONNREFUSED 127.0.0.1:14000',
        retryAt: '2026-12-06T00:00:10.000Z',
      }),
      site('plain'),
    ],
    clusters: [],
    warnings: [],
  };
  const text = renderStatus(report); // no colours: stdout is not a terminal here
  const lines = text.split('\n');
  assert.match(lines.find((l) => l.startsWith('CERTIFICATE')) ?? '', /HOSTS +EXPIRES +RENEWS +ISSUER +NOTE/);
  assert.match(
    lines.find((l) => l.startsWith('shop ') && l.includes('2027-03-06')) ?? '',
    /shop\.example www\.shop\.example +2027-03-06T00:00:00\.000Z \(90 d\) +2027-02-04T00:00:00\.000Z +Test CA/,
  );
  assert.match(
    lines.find((l) => l.startsWith('blog ') && l.includes('none yet')) ?? '',
    /none yet .*connect ECONNREFUSED 127\.0\.0\.1:14000; next try 2026-12-06T00:00:10\.000Z/,
  );
  assert.equal(lines.filter((l) => l.startsWith('plain ')).length, 1, 'a site without ACME is only in the sites table');
  assert.doesNotMatch(renderStatus({ ...report, sites: [site('plain')] }), /CERTIFICATE/);
});
