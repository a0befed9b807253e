// QA checks with Apache in front: through the load balancer's QA VirtualHost, connecting to one address
// and sending another Host (qa_url + qa_connect); a config whose checks can reach nothing is pointed
// out by `dayshift check` and refused at the step with the reason; a check's body may name the version.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { releaseAdvice } from '../../src/release/advice.js';
import { expandEnv, qaTargetFor, runQaChecks } from '../../src/release/checks.js';
import { ReleaseStepError } from '../../src/release/errors.js';
import { qaCheckSchema } from '../../src/config/release-schema.js';
import { startBackend, type Backend } from '../support/backends.js';
import { runCli } from '../support/cli.js';
import { startHttpd, type Httpd } from '../support/httpd.js';
import { findExecutable } from '../support/peers.js';

const apache2 = findExecutable('apache2');
const missing = apache2
  ? false
  : 'apache2 not found: install the Debian package apache2 (apt-get install apache2) to run this test';
if (missing && process.env.CI === 'true') throw new Error(missing);

/** A driver config of two clusters; `prodA` is added to prod-a's section. */
function driverConfig(managerPort: number, backends: Backend[], prodA = ''): string {
  return `
listen: { http: 127.0.0.1:1 }
driver: { type: apache, url: "http://127.0.0.1:${managerPort}/balancer-manager", balancer: web-prod }
clusters:
  prod-a: { members: [{ url: "${backends[0]!.url}", route: a1 }] ${prodA} }
  prod-b: { members: [{ url: "${backends[1]!.url}", route: b1 }] }
sites:
  public: { hosts: [example.com], routes: [{ clusters: [prod-a, prod-b] }] }
  qa-a: { hosts: [prod-a.example.com], routes: [{ clusters: [prod-a] }] }
  qa-b: { hosts: [prod-b.example.com], routes: [{ clusters: [prod-b] }] }
release: { qa: [{ path: /, body: a1 }] }
`;
}

describe('QA checks through Apache (the origin layout, a QA VirtualHost per cluster)', { skip: missing }, () => {
  let backends: Backend[] = [];
  let httpd: Httpd;

  before(async () => {
    backends = await Promise.all(['a1', 'b1'].map(startBackend));
    httpd = await startHttpd(apache2!, {
      body: backends
        .map((b, i) =>
          [
            `<VirtualHost 127.0.0.1:{PORT}>`,
            `  ServerName prod-${'ab'[i]}.example.com`,
            `  <Proxy balancer://web-prod-${'ab'[i]}>`,
            `    BalancerMember ${b.url}`,
            '  </Proxy>',
            `  ProxyPass / balancer://web-prod-${'ab'[i]}/`,
            '</VirtualHost>',
          ].join('\n'),
        )
        .join('\n'),
    });
  });
  after(async () => {
    await httpd?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  test("without qa_url the checks can reach nothing: check warns, and the step says why instead of asking Dayshift's own port", async () => {
    const { config } = parseConfig(driverConfig(httpd.port, backends));
    assert.match(
      releaseAdvice(config).join('\n'),
      /clusters\.prod-a\.qa_url: with the apache driver Dayshift's own port serves nothing/,
    );
    assert.throws(
      () => qaTargetFor(config, 'prod-a'),
      (err: unknown) => err instanceof ReleaseStepError && /cannot reach it: with the apache driver/.test(err.message),
    );
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-qa-'));
    try {
      await writeFile(join(dir, 'dayshift.yaml'), driverConfig(httpd.port, backends));
      const checked = await runCli(['check', '-c', join(dir, 'dayshift.yaml')]);
      assert.equal(checked.code, 0, checked.stderr);
      assert.match(checked.stdout, /warning: clusters\.prod-a\.qa_url: with the apache driver/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('qa_url names the Host, qa_connect the address: the check reaches prod-a through its QA VirtualHost', async () => {
    const { config } = parseConfig(
      driverConfig(
        httpd.port,
        backends,
        `, qa_url: "http://prod-a.example.com/", qa_connect: "127.0.0.1:${httpd.port}"`,
      ),
    );
    assert.doesNotMatch(releaseAdvice(config).join('\n'), /prod-a\.qa_url/);
    const target = qaTargetFor(config, 'prod-a');
    assert.deepEqual(target, {
      url: 'http://prod-a.example.com/',
      origin: `http://127.0.0.1:${httpd.port}`,
      host: 'prod-a.example.com',
    });
    const lines = await runQaChecks([qaCheckSchema.parse({ path: '/', body: 'a1' })], { target, cwd: '.', env: {} });
    assert.deepEqual(lines, ['GET http://prod-a.example.com/ → 200, body has "a1"']);
  });
});

test('a QA check path and body expand $DAYSHIFT_VERSION and the other release variables', async () => {
  assert.equal(
    expandEnv('version ${DAYSHIFT_VERSION} of $DAYSHIFT_CLUSTER, $HOME kept', {
      DAYSHIFT_VERSION: '2.0',
      DAYSHIFT_CLUSTER: 'prod-a',
    }),
    'version 2.0 of prod-a, $HOME kept',
  );
  const server = createServer((req, res) => res.end(`version 2.0 at ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const ctx = {
      target: { url: `${origin}/`, origin, host: 'qa.example.com' },
      cwd: '.',
      env: { DAYSHIFT_VERSION: '2.0' },
    };
    assert.deepEqual(
      await runQaChecks(
        [
          qaCheckSchema.parse({
            path: '/v/$DAYSHIFT_VERSION',
            body: 'version $DAYSHIFT_VERSION at /v/${DAYSHIFT_VERSION}',
          }),
        ],
        ctx,
      ),
      [`GET ${origin}/v/2.0 → 200, body has "version 2.0 at /v/2.0"`],
    );
    await assert.rejects(
      runQaChecks([qaCheckSchema.parse({ path: '/', body: 'version $DAYSHIFT_VERSION' })], {
        ...ctx,
        env: { DAYSHIFT_VERSION: '3.0' },
      }),
      /does not contain "version 3\.0"/,
    );
  } finally {
    server.close();
  }
});
