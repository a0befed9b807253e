import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import { buildSteps, clusterPlan } from '../../src/release/plan.js';
import { inWindow, nextWindowStart } from '../../src/release/window.js';

function config(release: Record<string, unknown> | undefined) {
  return parseConfig(
    JSON.stringify({
      listen: { http: '127.0.0.1:8080' },
      clusters: {
        'prod-a': { members: [{ url: 'http://127.0.0.1:9001' }] },
        'prod-b': { members: [{ url: 'http://127.0.0.1:9002' }] },
      },
      sites: { public: { hosts: ['example.com'], routes: [{ clusters: ['prod-a', 'prod-b'] }] } },
      ...(release ? { release } : {}),
    }),
  ).config;
}

describe('release plan', () => {
  it('runs drain, out, hooks, gates, approval and shift per cluster, in the configured order', () => {
    const steps = buildSteps(
      config({
        order: ['prod-b', 'prod-a'],
        hooks: {
          before: 'echo before',
          deploy: { run: './deploy.sh', per: 'member', repeatable: true },
          stop: 'stop.sh',
          after: 'echo after',
        },
        qa: [{ path: '/health' }],
      }),
    );
    assert.deepEqual(
      steps.map((s) => s.id),
      [
        'before',
        'prod-b:drain',
        'prod-b:out',
        'prod-b:stop',
        'prod-b:deploy',
        'prod-b:health',
        'prod-b:qa',
        'prod-b:approval',
        'prod-b:shift',
        'prod-a:drain',
        'prod-a:out',
        'prod-a:stop',
        'prod-a:deploy',
        'prod-a:health',
        'prod-a:qa',
        'prod-a:approval',
        'prod-a:shift',
        'after',
      ],
    );
    assert.equal(steps.find((s) => s.id === 'prod-b:deploy')?.repeatable, true);
    assert.equal(
      steps.find((s) => s.id === 'prod-b:stop')?.repeatable,
      false,
      'hooks are not repeatable unless they say so',
    );
    assert.ok(steps.every((s) => s.state === 'pending'));
  });

  it('applies per-cluster overrides over the plan and the drain section', () => {
    const c = config({
      drain: { deadline: '10m' },
      approval: 'auto after 15m',
      clusters: { 'prod-b': { approval: 'manual', drain: { session_idle: '30s' } } },
    });
    assert.deepEqual(clusterPlan(c, 'prod-a').approval, { mode: 'auto', afterMs: 15 * 60_000 });
    assert.deepEqual(clusterPlan(c, 'prod-b').approval, { mode: 'manual' });
    assert.equal(clusterPlan(c, 'prod-a').drainDeadlineMs, 10 * 60_000);
    assert.equal(clusterPlan(c, 'prod-a').drainIdleMs, 5 * 60_000, 'drain.session_idle by default');
    assert.equal(clusterPlan(c, 'prod-b').drainIdleMs, 30_000);
  });

  it('rejects an order or override that names an unknown cluster, with its place in the file', () => {
    assert.throws(
      () => config({ order: ['prod-a', 'prod-c'], clusters: { 'prod-x': { approval: 'auto' } } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some(
          (p) =>
            p.path === 'release.order[1]' &&
            /unknown cluster "prod-c"; defined clusters: prod-a, prod-b/.test(p.message),
        ) &&
        err.problems.some((p) => p.path === 'release.clusters.prod-x'),
    );
  });

  it('rejects an approval it cannot read, saying what it expects', () => {
    assert.throws(
      () => config({ approval: 'later' }),
      (err: unknown) => err instanceof ConfigError && /"manual", "auto" or "auto after DURATION"/.test(err.message),
    );
  });
});

describe('release windows', () => {
  const windows = {
    timezone: 'Europe/Berlin',
    allow: [
      {
        days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[],
        from: '09:00',
        to: '16:00',
      },
    ],
  };

  it('is inside on a weekday afternoon in the time zone and outside on the weekend', () => {
    assert.equal(inWindow(windows, new Date('2026-11-26T10:30:00Z')), true, 'Thursday 11:30 in Berlin');
    assert.equal(inWindow(windows, new Date('2026-11-26T15:30:00Z')), false, 'Thursday 16:30 in Berlin');
    assert.equal(inWindow(windows, new Date('2026-11-28T10:30:00Z')), false, 'Saturday');
  });

  it('finds the next opening', () => {
    assert.equal(
      nextWindowStart(windows, new Date('2026-11-27T16:00:00Z'))?.toISOString(),
      '2026-11-30T08:00:00.000Z',
      'Friday evening → Monday 09:00 Berlin',
    );
  });
});
