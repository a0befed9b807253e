import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { StatusReport } from '../../src/observe/status-report.js';
import { runCli } from '../support/cli.js';
import { startMember, type TestMember } from '../support/members.js';
import { request } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

describe('admin API', () => {
  let members: TestMember[] = [];
  let ds: TestDayshift;
  const config = () => ({
    clusters: {
      'prod-a': {
        members: [
          { url: members[0]!.url, route: 'a1' },
          { url: members[1]!.url, route: 'a2' },
        ],
      },
      'prod-b': {
        members: [
          { url: members[2]!.url, route: 'b1' },
          { url: members[3]!.url, route: 'b2' },
        ],
      },
    },
    health: { enabled: false },
    sites: {
      public: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['prod-a', 'prod-b'] }] },
      'qa-a': { hosts: ['prod-a.example.com'], routes: [{ path: '/', clusters: ['prod-a'] }] },
    },
  });

  before(async () => {
    members = await Promise.all(['a1', 'a2', 'b1', 'b2'].map((n) => startMember(n)));
    ds = await startTestDayshift(config());
  });
  after(async () => {
    await ds?.stop();
    await Promise.all(members.map((m) => m.close()));
  });

  test('every call but /healthz and /metrics needs the bearer token', async () => {
    assert.equal((await fetch(`${ds.adminUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${ds.adminUrl}/metrics`)).status, 200);
    const none = await fetch(`${ds.adminUrl}/api/status`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
    const wrong = await fetch(`${ds.adminUrl}/api/status`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const post = await fetch(`${ds.adminUrl}/api/clusters/prod-a/traffic`, { method: 'POST', body: '{"state":"out"}' });
    assert.equal(post.status, 401);
  });

  test('malformed request targets get 400, other HTTP versions 505, and the listener lives on', async () => {
    const port = Number(new URL(ds.adminUrl).port);
    for (const [method, target, version, status] of [
      ['GET', '//', '1.1', 400],
      ['POST', '/api/clusters/%E0%A4%A/traffic', '1.1', 400],
      ['GET', '/healthz', '2.0', 505],
    ] as const) {
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.end(`${method} ${target} HTTP/${version}\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      await once(socket, 'close');
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${method} ${target} HTTP/${version}`);
    }
    assert.equal((await fetch(`${ds.adminUrl}/healthz`)).status, 200);
  });

  test('the generated token file is private (0600)', async () => {
    const { stat } = await import('node:fs/promises');
    assert.equal(ds.dayshift.token.generated, true);
    assert.equal((await stat(ds.dayshift.token.source)).mode & 0o777, 0o600);
  });

  test('the OpenAPI document lists the operations', async () => {
    const { status, body } = await ds.api<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
      'GET',
      '/api/openapi.json',
    );
    assert.equal(status, 200);
    assert.match(body.openapi, /^3\./);
    for (const path of [
      '/api/status',
      '/api/clusters/{cluster}/traffic',
      '/api/members/{cluster}/{member}/state',
      '/api/drain/{target}',
      '/api/sites/{site}/maintenance',
      '/api/sites/{site}/pause',
      '/api/reload',
    ]) {
      assert.ok(body.paths[path], `${path} documented`);
    }
    assert.ok(body.paths['/api/clusters/{cluster}/traffic']!.post);
  });

  test('status shows sites, clusters with traffic state and weight, members with admin state and health', async () => {
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    assert.deepEqual(
      body.sites.map((s) => s.name),
      ['public', 'qa-a'],
    );
    assert.deepEqual(
      body.clusters.map((c) => [c.name, c.traffic, c.weight]),
      [
        ['prod-a', 'live', 1],
        ['prod-b', 'live', 1],
      ],
    );
    assert.deepEqual(
      body.clusters[0]!.members.map((m) => [m.id, m.admin]),
      [
        ['a1', 'ready'],
        ['a2', 'ready'],
      ],
    );
    assert.match(body.clusters[0]!.qaUrl ?? '', /^http:\/\/prod-a\.example\.com:\d+\/$/);
    assert.equal(body.workers, undefined, 'one process (workers: 1): no worker list');
  });

  test('bad requests get 400 with the reason; unknown targets 404', async () => {
    const bad = await ds.api<{ error: string }>('POST', '/api/clusters/prod-a/traffic', { state: 'sideways' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /state/);
    const unknown = await ds.api<{ error: string }>('POST', '/api/clusters/prod-z/traffic', { state: 'out' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /unknown cluster "prod-z"/);
    const member = await ds.api<{ error: string }>('POST', '/api/members/prod-a/zz/state', { state: 'disabled' });
    assert.equal(member.status, 404);
  });

  test('a cluster route refuses a member named through an encoded slash', async () => {
    for (const path of ['/api/clusters/prod-a%2Fa1/traffic', '/api/clusters/prod-a%2Fa1/weight']) {
      const refused = await ds.api<{ error: string }>(
        'POST',
        path,
        path.endsWith('weight') ? { weight: 5 } : { state: 'out' },
      );
      assert.equal(refused.status, 400, path);
      assert.match(refused.body.error, /expected CLUSTER, got the member prod-a\/a1/);
    }
    const status = (await ds.api<StatusReport>('GET', '/api/status')).body;
    const prodA = status.clusters.find((c) => c.name === 'prod-a')!;
    assert.equal(prodA.traffic, 'live');
    assert.notEqual(prodA.weight, 5);
  });

  test('taking a cluster out applies to the next request and is audited with who and from where', async () => {
    const out = await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'out' });
    assert.equal(out.status, 200);
    for (let i = 0; i < 20; i++) {
      const reply = await request(ds.port);
      assert.match(reply.body, /^b[12] /, 'only prod-b serves the public site');
    }
    const qa = await request(ds.port, { host: 'prod-a.example.com' });
    assert.match(qa.body, /^a[12] /, 'the QA site still reaches prod-a');
    const refused = await ds.api<{ error: string }>('POST', '/api/clusters/prod-b/traffic', { state: 'out' });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error, /no live cluster/);
    assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' })).status, 200);
    const audit = await ds.api<{ who: string; from: string; action: string; target: string }[]>('GET', '/api/audit');
    const entries = audit.body.filter((e) => e.target === 'prod-a');
    assert.deepEqual(
      entries.map((e) => e.action),
      ['out', 'live'],
    );
    assert.equal(entries[0]!.who, 'token:admin');
    assert.match(entries[0]!.from, /127\.0\.0\.1/);
  });

  test("names that are not the config's own (__proto__, constructor) are unknown targets", async () => {
    assert.equal((await ds.api('POST', '/api/sites/__proto__/maintenance', { message: 'x' })).status, 404);
    assert.equal((await ds.api('POST', '/api/clusters/constructor/traffic', { state: 'out' })).status, 404);
    assert.equal((await ds.api('GET', '/api/history/__proto__')).status, 404);
    assert.equal(({} as { maintenance?: unknown }).maintenance, undefined);
  });

  test('weights that would leave the public site with nothing to serve new sessions are refused', async () => {
    assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'out' })).status, 200);
    assert.equal((await ds.api('POST', '/api/members/prod-b/b1/weight', { weight: 0 })).status, 200);
    const refused = await ds.api<{ error: string }>('POST', '/api/members/prod-b/b2/weight', { weight: 0 });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error, /weight prod-b\/b2 0: site public .* no live cluster/);
    assert.equal((await ds.api('POST', '/api/clusters/prod-b/weight', { weight: 0 })).status, 409);
    assert.equal((await ds.api('POST', '/api/members/prod-b/b1/weight', { weight: 1 })).status, 200);
    assert.equal((await ds.api('POST', '/api/clusters/prod-a/traffic', { state: 'live' })).status, 200);
  });

  test('member admin state and weight', async () => {
    assert.equal((await ds.api('POST', '/api/members/prod-b/b1/state', { state: 'disabled' })).status, 200);
    assert.equal((await ds.api('POST', '/api/members/prod-b/2/weight', { weight: 3 })).status, 200, 'member by index');
    const { body } = await ds.api<StatusReport>('GET', '/api/status');
    const b = body.clusters[1]!.members;
    assert.deepEqual(
      b.map((m) => [m.id, m.admin, m.weight]),
      [
        ['b1', 'disabled', 1],
        ['b2', 'ready', 3],
      ],
    );
    await ds.api('POST', '/api/members/prod-b/b1/state', { state: 'ready' });
  });

  test('maintenance answers 503 with the message until it is ended', async () => {
    assert.equal((await ds.api('POST', '/api/sites/public/maintenance', { message: 'Back at 3pm' })).status, 200);
    const during = await request(ds.port, { headers: { accept: 'text/html' } });
    assert.equal(during.status, 503);
    assert.match(during.body, /Back at 3pm/);
    assert.equal((await request(ds.port, { host: 'prod-a.example.com' })).status, 200, 'other sites unaffected');
    assert.equal((await ds.api('DELETE', '/api/sites/public/maintenance')).status, 200);
    assert.equal((await request(ds.port)).status, 200);
  });

  test('pause holds new requests until resume, then serves them', async () => {
    assert.equal((await ds.api('POST', '/api/sites/public/pause', { for: '30s' })).status, 200);
    const receivedBefore = members.reduce((n, m) => n + m.received.length, 0);
    let answered = false;
    const held = request(ds.port).then((r) => {
      answered = true;
      return r;
    });
    // A negative can only be observed over a window: several admin round trips while the request waits.
    for (let i = 0; i < 5; i++) await ds.api('GET', '/api/status');
    assert.equal(answered, false, 'held while paused');
    assert.equal(
      members.reduce((n, m) => n + m.received.length, 0),
      receivedBefore,
      'no member saw it',
    );
    assert.equal((await ds.api('DELETE', '/api/sites/public/pause')).status, 200);
    assert.equal((await held).status, 200);
  });

  test('a bad config on reload is refused with file:line errors and the running one stays', async () => {
    const { writeFile } = await import('node:fs/promises');
    const original = await readFile(ds.configFile, 'utf8');
    await writeFile(
      ds.configFile,
      original
        .replace('balance: round-robin', 'balance: sideways')
        .replace(/routes:\n/, 'routes:\n      - { path: /x, clusters: [nope] }\n'),
    );
    const refused = await ds.api<{ error: string }>('POST', '/api/reload');
    assert.equal(refused.status, 422);
    assert.match(
      refused.body.error,
      /dayshift\.yaml:\d+:\d+: sites\.public\.routes\[0\]\.clusters\[0\]: unknown cluster "nope"/,
    );
    assert.equal((await request(ds.port)).status, 200, 'still serving');
    await ds.writeConfig({
      ...config(),
      sites: {
        ...config().sites,
        extra: { hosts: ['extra.example.com'], routes: [{ path: '/', clusters: ['prod-b'] }] },
      },
    });
    assert.equal((await ds.api('POST', '/api/reload')).status, 200);
    assert.match((await request(ds.port, { host: 'extra.example.com' })).body, /^b[12] /);
  });

  test('metrics expose requests, member state and health in Prometheus format', async () => {
    await request(ds.port);
    const text = await (await fetch(`${ds.adminUrl}/metrics`)).text();
    assert.match(text, /dayshift_requests_total\{site="public",status_class="2xx"\} \d+/);
    assert.match(text, /dayshift_member_responses_total\{cluster="prod-a",member="a1",status_class="2xx"\} \d+/);
    assert.match(text, /dayshift_member_latency_seconds_bucket\{cluster="prod-a",member="a1",le="\+Inf"\} \d+/);
    assert.match(text, /dayshift_cluster_traffic_state\{cluster="prod-a",state="live"\} 1/);
    assert.match(text, /dayshift_member_admin_state\{cluster="prod-b",member="b1",state="ready"\} 1/);
    assert.match(text, /dayshift_state_changes_total \d+/);
    assert.match(text, /dayshift_reloads_total 1/);
    assert.doesNotMatch(text, /dayshift_workers?_/, 'one process (workers: 1): no worker metrics');
  });

  // Last: it throttles this address's wrong tokens for a minute.
  test('wrong tokens are rate-limited per address and audited; the right one always works', async () => {
    // (The first test already spent one wrong token.)
    let refused = 0;
    while (
      refused < 20 &&
      (await fetch(`${ds.adminUrl}/api/status`, { headers: { authorization: `Bearer wrong-${refused}` } })).status ===
        401
    )
      refused++;
    assert.equal(refused, 9);
    const limited = await fetch(`${ds.adminUrl}/api/status`, { headers: { authorization: 'Bearer wrong-again' } });
    assert.equal(limited.status, 429);
    assert.match(
      ((await limited.json()) as { error: string }).error,
      /too many wrong tokens from .*: try again in \d+s/,
    );
    assert.equal((await ds.api('GET', '/api/status')).status, 200, 'the right token was refused');
    assert.equal((await fetch(`${ds.adminUrl}/healthz`)).status, 200, '/healthz needs no token and stays open');
    const audit = await ds.api<
      {
        who: string;
        from: string;
        action: string;
        target: string;
        detail?: { failures: number; throttled?: boolean };
      }[]
    >('GET', '/api/audit?limit=100');
    const wrong = audit.body.filter((e) => e.action === 'wrong token');
    assert.deepEqual(
      wrong.map((e) => e.detail?.failures),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      'one entry per counted failure, none past the limit',
    );
    assert.equal(wrong.at(-1)!.detail?.throttled, true);
    assert.deepEqual(new Set(wrong.map((e) => `${e.who} ${e.target}`)), new Set(['anonymous admin API']));
    assert.match(wrong[0]!.from, /127\.0\.0\.1/);
  });

  test('the CLI reports a throttled wrong token as a refused token (exit 5), and works with the right one', async () => {
    const locked = await runCli(['status', '--admin', ds.adminUrl, '--token', 'wrong-token-wrong-token']);
    assert.equal(locked.code, 5);
    assert.match(locked.stderr, /refused the token: too many wrong tokens from .*: try again in \d+s/);
    assert.equal((await runCli(['status', '--admin', ds.adminUrl, '--token', ds.token])).code, 0);
  });
});
