import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Dayshift } from '../../src/dayshift.js';
import { LoadGenerator } from '../../src/demo/load.js';
import { allUp, api, DAYSHIFT, makeWorld, releaseIn, startInProcess, type World } from './harness.js';

describe('a canary shift', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('rolls a version that answers errors back automatically: the old cluster gets all traffic again', async () => {
    world = await makeWorld({
      release: {
        // The broken version fails every page but /health: the QA checks are left out to let it reach the canary.
        qa: [],
        hooks: {
          deploy: { run: `${DAYSHIFT} demo-deploy`, per: 'member' },
          rollback: { run: `DAYSHIFT_VERSION=1.0 ${DAYSHIFT} demo-deploy`, per: 'member' },
        },
        shift: {
          mode: 'canary',
          steps: [{ percent: 50, pause: '4s' }],
          analysis: { window: '3s', max_error_rate: 0.05, min_requests: 5 },
        },
      },
    });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    const load = new LoadGenerator({
      origin: world.origin,
      host: world.publicHost,
      users: 8,
      thinkMs: 50,
      maxDurationMs: 120_000,
    }).start();
    try {
      await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0-broken' });
      const failed = await releaseIn(dayshift, ['failed', 'succeeded']);
      assert.equal(failed.state, 'failed');
      const shift = failed.steps[failed.current]!;
      assert.equal(shift.id, 'prod-a:shift');
      assert.match(
        shift.detail ?? '',
        /canary analysis at 50%: error rate \d+\.\d% over \ds is above 5\.0%; traffic rolled back \(prod-a is out again\)/,
      );
      assert.ok(failed.canary?.breach, 'the breach is recorded');
      assert.ok(
        failed.canary!.released.errorRate > 0.05 && failed.canary!.baseline.errorRate === 0,
        JSON.stringify(failed.canary),
      );
      const state = dayshift.plane.state.clusters;
      assert.deepEqual(
        [state['prod-a']?.traffic, state['prod-b']?.traffic, state['prod-b']?.weight],
        ['out', 'live', 1],
      );
    } finally {
      await load.stop();
    }
    // After the rollback every new checkout completes on the old version.
    const result = await new LoadGenerator({
      origin: world.origin,
      host: world.publicHost,
      users: 4,
      thinkMs: 10,
      maxCheckouts: 20,
    })
      .start()
      .finished();
    assert.equal(result.checkoutsCompleted, 20);
    assert.equal(result.failed, 0, result.problems.join('\n'));
    assert.deepEqual(Object.keys(result.completedByVersion), ['1.0']);
  });

  it('promotes a healthy version step by step after the failed one is aborted', async () => {
    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort', {});
    assert.equal(aborted.body.state, 'aborted');
    const load = new LoadGenerator({
      origin: world.origin,
      host: world.publicHost,
      users: 8,
      thinkMs: 50,
      maxDurationMs: 120_000,
    }).start();
    let result;
    try {
      await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.1' });
      const done = await releaseIn(dayshift, ['failed', 'succeeded']);
      assert.equal(done.state, 'succeeded', done.reason);
      assert.match(
        done.steps.find((s) => s.id === 'prod-a:shift')?.detail ?? '',
        /prod-a is live \(weight 1\) after 50%, analysis passed/,
      );
    } finally {
      result = await load.stop();
    }
    assert.equal(result.failed, 0, result.problems.join('\n'));
    assert.equal(result.cut, 0, result.problems.join('\n'));
    const state = dayshift.plane.state.clusters;
    assert.deepEqual([state['prod-a']?.weight, state['prod-b']?.weight], [1, 1], 'weights are back as before');
  });
});
