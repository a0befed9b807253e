import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { DrainProgress } from '../../src/control/plane.js';
import { runCli } from '../support/cli.js';
import { startMember, type TestMember } from '../support/members.js';
import { SessionTracker } from '../../src/control/session-tracker.js';
import { request, startTestProxy, waitFor } from '../support/proxy.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';

/** A Tomcat-like member: a request without a session gets JSESSIONID=<id>.<route>. */
function sessionMember(route: string): Promise<TestMember> {
  let next = 0;
  return startMember(route, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const hasSession = /JSESSIONID=/.test(req.headers.cookie ?? '');
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        ...(hasSession ? {} : { 'set-cookie': `JSESSIONID=S${route}${next++}.${route}; Path=/` }),
      });
      res.end(route);
    });
  });
}

describe('session-aware drain', () => {
  let members: TestMember[] = [];
  let ds: TestDayshift;
  const cli = (...args: string[]) => runCli([...args, '--admin', ds.adminUrl, '--token', ds.token]);

  before(async () => {
    members = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(sessionMember));
    ds = await startTestDayshift({
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
      drain: { session_idle: '1500ms', deadline: '1m' },
      sites: {
        public: {
          hosts: ['example.com'],
          routes: [
            {
              path: '/',
              clusters: ['prod-a', 'prod-b'],
              sticky: { mode: 'route', cookie: 'JSESSIONID', path_param: 'jsessionid' },
            },
          ],
        },
      },
    });
  });
  after(async () => {
    await ds?.stop();
    await Promise.all(members.map((m) => m.close()));
  });

  /** A new user: requests until the proxy hands it a session on the wanted cluster. */
  async function sessionOn(cluster: 'a' | 'b'): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const reply = await request(ds.port);
      const cookie = String(reply.headers['set-cookie'] ?? '').split(';')[0]!;
      if (reply.body.startsWith(cluster)) return cookie;
    }
    throw new Error(`no session on prod-${cluster}`);
  }

  test('a draining cluster keeps its bound sessions, gets no new ones, and is drained once they go idle', async () => {
    const cookie = await sessionOn('a');
    const route = cookie.slice(cookie.lastIndexOf('.') + 1);
    const drain = await cli('drain', 'prod-a', '--json');
    assert.equal(drain.code, 0, drain.stderr);
    assert.equal(JSON.parse(drain.stdout).state, 'draining');

    for (let i = 0; i < 20; i++) {
      assert.match((await request(ds.port)).body, /^b/, 'new users go to prod-b only');
      assert.equal((await request(ds.port, { headers: { cookie } })).body, route, 'the bound user stays on its member');
    }
    const progress = await ds.api<DrainProgress>('GET', '/api/drain/prod-a');
    assert.equal(progress.body.drained, false);
    assert.equal(progress.body.sessions, 1);
    assert.equal(progress.body.reason, 'waiting');

    // The user finishes; once its session is idle for drain.session_idle the drain completes.
    const wait = await cli('wait', 'prod-a', '--json');
    assert.equal(wait.code, 0, wait.stderr);
    const done = JSON.parse(wait.stdout) as DrainProgress;
    assert.deepEqual([done.drained, done.reason, done.sessions, done.inFlight], [true, 'idle', 0, 0]);

    assert.equal((await cli('live', 'prod-a')).code, 0);
  });

  test('a session id a client made up routes to its member but holds no drain open (both request paths)', async () => {
    const drain = await cli('drain', 'prod-a', '--json');
    assert.equal(drain.code, 0, drain.stderr);
    for (let i = 0; i < 10; i++) {
      const cookie = `JSESSIONID=made-up-${i}.a1`;
      assert.equal((await request(ds.port, { headers: { cookie } })).body, 'a1', 'lane');
      assert.equal(
        (await request(ds.port, { method: 'POST', body: 'abc', headers: { cookie, 'content-length': '3' } })).body,
        'a1',
        "Node's path",
      );
    }
    const progress = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
    assert.deepEqual([progress.sessions, progress.drained], [0, true]);
    assert.equal((await cli('live', 'prod-a')).code, 0);
  });

  test('drain --wait shows progress and exits 4 when the deadline passes with sessions left', async () => {
    const cookie = await sessionOn('b');
    const route = cookie.slice(cookie.lastIndexOf('.') + 1);
    let busy = true;
    const keepBusy = (async () => {
      while (busy) await request(ds.port, { headers: { cookie } });
    })();
    const result = await cli('drain', `prod-b/${route}`, '--wait', '--deadline', '1s');
    busy = false;
    await keepBusy;
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stderr, /prod-b\/b[12] draining: \d+ in flight, 1 session\(s\) left/);
    assert.match(result.stderr, /deadline reached with \d+ in flight, 1 session\(s\)/);
    assert.equal((await cli('enable', `prod-b/${route}`)).code, 0);
  });

  test('out refuses to leave the public site with no live cluster unless --force', async () => {
    assert.equal((await cli('out', 'prod-a')).code, 0);
    const refused = await cli('out', 'prod-b');
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /refusing to out prod-b: site public \(\/\) would have no live cluster/);
    const forced = await cli('out', 'prod-b', '--force');
    assert.equal(forced.code, 0);
    assert.equal((await request(ds.port)).status, 503, 'nothing live: 503');
    await cli('live', 'prod-a');
    await cli('live', 'prod-b');
    await waitFor(async () => (await request(ds.port)).status === 200);
  });

  test('CLI errors: unknown target is a usage error, an unreachable API exit 5, a wrong token exit 5', async () => {
    const unknown = await cli('drain', 'prod-z');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown cluster "prod-z"; clusters: prod-a, prod-b/);
    const unreachable = await runCli(['status', '--admin', 'http://127.0.0.1:1', '--token', 'x'.repeat(20)]);
    assert.equal(unreachable.code, 5);
    assert.match(unreachable.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:1/);
    const wrong = await runCli(['status', '--admin', ds.adminUrl, '--token', 'x'.repeat(20)]);
    assert.equal(wrong.code, 5);
    assert.match(wrong.stderr, /refused the token/);
  });

  test('every drain has a deadline from its start: drain.deadline, or --deadline with or without --wait', async () => {
    assert.equal((await cli('drain', 'prod-a')).code, 0);
    const plain = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
    assert.equal(Date.parse(plain.deadline!) - Date.parse(plain.since!), 60_000, 'drain.deadline of this config');
    const given = await cli('drain', 'prod-a', '--deadline', '10m');
    assert.equal(given.code, 0, given.stderr);
    const moved = (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body;
    assert.equal(moved.since, plain.since, 'the same drain');
    assert.equal(Date.parse(moved.deadline!) - Date.parse(moved.since!), 600_000);
    assert.equal((await cli('live', 'prod-a')).code, 0);
  });

  test('usage errors are found before anything is sent: a bad --deadline drains nothing, --weight on a member is refused', async () => {
    const bad = await cli('drain', 'prod-a', '--wait', '--deadline', 'soon');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad --deadline "soon": expected a duration/);
    assert.equal(
      (await ds.api<DrainProgress>('GET', '/api/drain/prod-a')).body.reason,
      'not-draining',
      'prod-a was not drained',
    );
    const member = await cli('live', 'prod-a/a1', '--weight', '2');
    assert.equal(member.code, 2);
    assert.match(member.stderr, /`dayshift weight prod-a\/a1 2`/);
  });

  test('release status --watch with no release is a usage error, not an endless wait', async () => {
    const watch = await cli('release', 'status', '--watch');
    assert.equal(watch.code, 2);
    assert.match(watch.stderr, /there is no release to watch/);
  });

  test('status prints a table for people and JSON for scripts', async () => {
    const human = await cli('status');
    assert.equal(human.code, 0);
    assert.match(human.stdout, /CLUSTER\/MEMBER\s+STATE\s+WEIGHT\s+HEALTH/);
    assert.match(human.stdout, /prod-a\s+live/);
    const json = JSON.parse((await cli('status', '--json')).stdout);
    assert.deepEqual(
      json.clusters.map((c: { name: string }) => c.name),
      ['prod-a', 'prod-b'],
    );
  });
});

describe('session tracking', () => {
  test('made-up session ids neither enter the tracker nor evict the sessions members issued', async () => {
    const member = await sessionMember('a1');
    const sessions = new SessionTracker(10);
    const proxy = await startTestProxy(
      {
        clusters: { c: { members: [{ url: member.url, route: 'a1' }] } },
        health: { enabled: false },
        sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'], sticky: { mode: 'route' } }] } },
      },
      { sessions },
    );
    try {
      const issued = String((await request(proxy.port)).headers['set-cookie']).split(';')[0]!;
      assert.equal(sessions.size, 1, 'the issued session is tracked');
      for (let i = 0; i < 30; i++) {
        const cookie = `JSESSIONID=flood-${i}.a1`;
        await request(proxy.port, { headers: { cookie } });
        await request(proxy.port, { method: 'POST', body: 'abc', headers: { cookie, 'content-length': '3' } });
      }
      assert.deepEqual([sessions.size, sessions.evictions], [1, 0]);
      const before = sessions.byMember(Date.now(), 60_000).get('c/a1')!.oldestIdleMs;
      await request(proxy.port, { headers: { cookie: issued } });
      assert.ok(
        sessions.byMember(Date.now(), 60_000).get('c/a1')!.oldestIdleMs < before,
        'a request of the issued session refreshes it',
      );
    } finally {
      await proxy.handle.close(1000);
      await member.close();
    }
  });
});
