// What `dayshift check` and `release start` point out about a config that is valid but would make a
// release say or do less than it seems: each piece of advice appears when its cause is there, and not
// otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { releaseAdvice } from '../../src/release/advice.js';

/** A config of two clusters of two members each; `extra` YAML lines are appended, `member` is each member's tail. */
function advice(extra = '', member = '', route = '{ clusters: [prod-a, prod-b] }'): string {
  const m = (port: number, id: string) => `{ url: "http://127.0.0.1:${port}", route: ${id}${member} }`;
  return releaseAdvice(
    parseConfig(`
listen: { http: 127.0.0.1:8080 }
clusters:
  prod-a: { members: [${m(9001, 'a1')}, ${m(9002, 'a2')}] }
  prod-b: { members: [${m(9003, 'b1')}, ${m(9004, 'b2')}] }
sites:
  public: { hosts: [example.com], routes: [${route}] }
${extra}`).config,
  ).join('\n');
}

const sticky = '{ clusters: [prod-a, prod-b], sticky: { mode: route, cookie: JSESSIONID } }';

test('a plain config gets no advice', () => {
  assert.equal(advice(), '');
});

test('health checks off: the health gate would count members up unchecked', () => {
  assert.match(
    advice('health: { enabled: false }'),
    /health\.enabled is false for prod-a, prod-b: the release's health gate counts those members up/,
  );
  assert.match(advice('', ', health: { enabled: false }'), /health\.enabled is false for prod-a, prod-b/);
});

test('route stickiness with session_idle under 30m: a note on the application timeout, naming Tomcat for ajp', () => {
  assert.match(
    advice('', '', sticky),
    /drain\.session_idle is 5m00?s: a user idle longer than that .* loses the session/,
  );
  assert.equal(advice('drain: { session_idle: 30m }', '', sticky), '');
  assert.match(advice('release: { drain: { session_idle: 10m } }', '', sticky), /session_idle is 10m00?s/);
});

test('ajp members without stickiness, or sticky members without a route: the jvmRoute hint', () => {
  const ajp = parseConfig(`
listen: { http: 127.0.0.1:8080 }
drain: { session_idle: 30m }
clusters:
  prod-a: { members: [{ url: "ajp://127.0.0.1:8009" }, { url: "ajp://127.0.0.1:8010" }] }
sites:
  public: { hosts: [example.com], routes: [{ clusters: [prod-a] }] }
`).config;
  assert.match(releaseAdvice(ajp).join('\n'), /sites public: ajp members without sticky sessions.*jvmRoute/);
  ajp.sites.public!.routes[0]!.sticky = { mode: 'route', cookie: 'JSESSIONID' } as never;
  assert.match(releaseAdvice(ajp).join('\n'), /members of prod-a have none.*jvmRoute/);
});

test('QA checks via: preview need a public site over the cluster, and not a QA site', () => {
  assert.equal(
    advice('release: { qa: [{ path: /, via: preview }] }'),
    '',
    'the public site serves both clusters; no QA site is needed',
  );
  assert.match(
    advice('release: { qa: [{ path: /, via: qa }] }'),
    /clusters\.prod-a: its QA checks have no QA site to go to/,
  );
  const pinnedOnly = advice(
    'release: { qa: [{ path: /, via: preview }] }',
    '',
    '{ clusters: [prod-a, prod-b], traffic: pinned }',
  );
  assert.match(
    pinnedOnly,
    /clusters\.prod-a: its QA checks via: preview cannot run: no site has a shared route over prod-a/,
  );
});

test('a shadow step needs the built-in proxy and a public site over the cluster', () => {
  assert.equal(advice('release: { shadow: { percent: 10 } }'), '', 'the public site balances over both clusters');
  assert.match(
    advice('release: { shadow: { percent: 10 } }', '', '{ clusters: [prod-a, prod-b], traffic: pinned }'),
    /clusters\.prod-a: its shadow step would fail: no site has a shared route over prod-a/,
  );
  assert.match(
    advice(
      'release: { shadow: { percent: 10 } }\ndriver: { type: apache, url: "http://127.0.0.1:8081/balancer-manager", balancer: shop }',
    ),
    /clusters\.prod-a: its shadow step would fail: it needs the built-in proxy \(with the apache driver/,
  );
});
