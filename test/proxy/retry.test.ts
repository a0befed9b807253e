// The retry policy: the pure decision as a table, then what a client of a hung member sees on real sockets.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RetryCondition } from '../../src/model.js';
import { retryDecision, type FailedAttempt, type RetryVerdict } from '../../src/proxy/retry.js';
import type { FailurePhase } from '../../src/proxy/member-transport.js';
import type { UpstreamFailure } from '../../src/proxy/errors.js';
import { startMember, type TestMember } from '../support/members.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawExchange as raw, statuses } from '../support/raw-http.js';

const DEFAULT_ON: RetryCondition[] = ['conn-failure', 'empty-response'];

type Row = [
  name: string,
  phase: FailurePhase,
  kind: UpstreamFailure,
  changes: Partial<Omit<FailedAttempt, 'error'>> & { reused?: boolean; on?: RetryCondition[] },
  verdict: RetryVerdict,
];

const rows: Row[] = [
  ['a refused connection, any method', 'connect', 'refused', { method: 'POST' }, 'next'],
  ['a connect timeout', 'connect', 'timeout', {}, 'next'],
  ['a reset before anything was sent, POST', 'before-send', 'network', { method: 'POST' }, 'next'],
  ['an empty response to a GET', 'before-response', 'network', {}, 'next'],
  ['an empty response to a POST (it may have run)', 'before-response', 'network', { method: 'POST' }, 'stop'],
  ['a first-byte timeout, by default', 'before-response', 'timeout', {}, 'stop'],
  [
    'a first-byte timeout with response-timeout in retries.on',
    'before-response',
    'timeout',
    { on: [...DEFAULT_ON, 'response-timeout'] },
    'next',
  ],
  [
    'a first-byte timeout of a POST even then',
    'before-response',
    'timeout',
    { method: 'POST', on: ['response-timeout'] },
    'stop',
  ],
  ['a junk response, by default', 'before-response', 'protocol', {}, 'stop'],
  [
    'a junk response with junk-response in retries.on',
    'before-response',
    'protocol',
    { on: ['junk-response'] },
    'next',
  ],
  ['an empty response when retries.on leaves it out', 'before-response', 'network', { on: ['conn-failure'] }, 'stop'],
  ['a failure once response headers arrived', 'during-response', 'network', {}, 'stop'],
  ['the last attempt', 'connect', 'refused', { attempts: 3 }, 'stop'],
  ['a spent budget', 'connect', 'refused', { msLeft: 0 }, 'stop'],
  ['a body already read', 'connect', 'refused', { bodyIntact: false }, 'stop'],
  ['a stale kept-alive connection, GET', 'before-response', 'network', { reused: true }, 'stale'],
  [
    'a stale kept-alive connection, even on the last attempt',
    'before-response',
    'network',
    { reused: true, attempts: 3 },
    'stale',
  ],
  ['a second stale connection', 'before-response', 'network', { reused: true, staleRetried: true }, 'next'],
  ['a stale kept-alive connection, POST', 'before-response', 'network', { reused: true, method: 'POST' }, 'stop'],
  ['a timeout on a reused connection (not stale)', 'before-response', 'timeout', { reused: true }, 'stop'],
  ["a member's full queue, POST, even with retries.on empty", 'queue', 'refused', { method: 'POST', on: [] }, 'next'],
  ["a member's full queue on the last attempt", 'queue', 'refused', { attempts: 3 }, 'stop'],
  ["a member's full queue past the budget", 'queue', 'refused', { msLeft: 0 }, 'stop'],
  ['a wait past timeouts.queue', 'queue', 'timeout', {}, 'stop'],
];

describe('retryDecision', () => {
  for (const [name, phase, kind, changes, verdict] of rows) {
    it(`${verdict} after ${name}`, () => {
      const { reused = false, on = DEFAULT_ON, ...rest } = changes;
      const failed: FailedAttempt = {
        error: { phase, kind, reusedConnection: reused },
        method: 'GET',
        bodyIntact: true,
        attempts: 1,
        staleRetried: false,
        msLeft: 1000,
        ...rest,
      };
      assert.equal(retryDecision({ attempts: 3, on: new Set(on) }, failed), verdict);
    });
  }
});

describe('a hung member', () => {
  const hung: TestMember[] = [];
  const proxies: Record<string, TestProxy> = {};

  before(async () => {
    // Reads the request and never answers.
    for (const name of ['h1', 'h2', 'h3']) hung.push(await startMember(name, (req) => req.resume()));
    const base = {
      clusters: { c: { members: hung.map((m) => ({ url: m.url })) } },
      health: { enabled: false },
      passive: { failures: 100 },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    };
    proxies.byDefault = await startTestProxy({ ...base, timeouts: { first_byte: '1s' }, retries: { attempts: 3 } });
    proxies.budgeted = await startTestProxy({
      ...base,
      timeouts: { first_byte: '2s' },
      retries: { attempts: 3, on: ['conn-failure', 'response-timeout'], budget: '3s' },
    });
  });
  after(async () => {
    for (const proxy of Object.values(proxies)) await proxy.handle.close(1000);
    for (const m of hung) await m.close();
  });

  const received = () => hung.reduce((sum, m) => sum + m.received.length, 0);
  // The lane takes an HTTP/1.1 GET; Node's server an HTTP/1.0 one.
  const paths = {
    lane: 'GET /never HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
    node: 'GET /never HTTP/1.0\r\nHost: example.com\r\n\r\n',
  };

  for (const [path, bytes] of Object.entries(paths)) {
    it(`costs one first_byte and one member by default, not attempts × first_byte (${path})`, async () => {
      const seen = received();
      const started = Date.now();
      const reply = await raw(proxies.byDefault!.port, bytes);
      assert.deepEqual(statuses(reply), [504], reply.slice(0, 200));
      assert.equal(received() - seen, 1, 'the request was sent to more than one member');
      assert.ok(Date.now() - started < 2900, `answered after ${Date.now() - started} ms`);
    });

    it(`stops retrying first-byte timeouts at retries.budget, counting the cut attempt as a failure (${path})`, async () => {
      const seen = received();
      const failures = () => proxies.budgeted!.handle.stats().members.reduce((sum, m) => sum + m.failures, 0);
      const failed = failures();
      const started = Date.now();
      const reply = await raw(proxies.budgeted!.port, bytes);
      const elapsed = Date.now() - started;
      assert.deepEqual(statuses(reply), [504], reply.slice(0, 200));
      // Attempt one times out at 2 s, attempt two is cut by the 3 s budget; a third never starts.
      assert.equal(received() - seen, 2);
      assert.equal(failures() - failed, 2, 'the timed-out attempt and the one the budget cut');
      assert.ok(elapsed >= 2900 && elapsed < 5500, `answered after ${elapsed} ms`);
    });
  }
});
