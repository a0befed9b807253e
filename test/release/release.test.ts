import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Dayshift } from '../../src/dayshift.js';
import { LoadGenerator } from '../../src/demo/load.js';
import type { Release } from '../../src/release/types.js';
import { allUp, api, cli, makeWorld, releaseIn, startInProcess, type World } from './harness.js';

describe('a release under load', () => {
  let world: World;
  let dayshift: Dayshift;

  before(async () => {
    // The release's own drain idle window (counted by the conductor from the session tracker) differs
    // from drain.session_idle (1s).
    world = await makeWorld({ release: { drain: { session_idle: '1500ms' } } });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
  });
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('releases both clusters while users are mid-checkout: every checkout completes, no request fails', async () => {
    const load = new LoadGenerator({
      origin: world.origin,
      host: world.publicHost,
      users: 8,
      thinkMs: 100,
      maxDurationMs: 120_000,
    }).start();
    // Users are spread over both clusters and mid-checkout before the release starts.
    await loadGoing(load);
    const started = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', {
      version: '2.0',
    });
    assert.equal(started.status, 200);
    const done = await releaseIn(dayshift, ['succeeded', 'failed', 'aborted']);
    const result = await load.stop();

    assert.equal(done.state, 'succeeded', done.reason);
    assert.equal(done.steps[0]?.title, 'drain prod-a (session idle 1.5s, deadline 1m00s)');
    assert.equal(result.failed, 0, result.problems.join('\n'));
    assert.equal(result.cut, 0, result.problems.join('\n'));
    assert.equal(result.checkoutsCompleted, result.checkoutsStarted);
    assert.ok(
      (result.completedByVersion['1.0'] ?? 0) > 0 && (result.completedByVersion['2.0'] ?? 0) > 0,
      JSON.stringify(result.completedByVersion),
    );
    for (const app of world.apps.apps) assert.equal(app.version, '2.0', `${app.options.member} runs ${app.version}`);
    const state = dayshift.plane.state.clusters;
    assert.deepEqual([state['prod-a']?.traffic, state['prod-b']?.traffic], ['live', 'live']);
    assert.ok(
      done.steps.every((s) => s.state === 'succeeded' && s.startedAt && s.endedAt),
      'every step ran and has its times',
    );
    const deploy = done.steps.find((s) => s.id === 'prod-a:deploy');
    assert.ok(
      deploy?.output?.some((l) => l.includes('runs 2.0')),
      `deploy output is captured: ${JSON.stringify(deploy?.output)}`,
    );
  });

  it('keeps the release in the history, and the CLI shows it', async () => {
    const history = await api<Release[]>(dayshift.adminUrl, dayshift.token.value, 'GET', '/api/releases');
    assert.equal(history.body.length, 1);
    assert.equal(history.body[0]!.version, '2.0');
    const env = { DAYSHIFT_TOKEN: dayshift.token.value };
    const shown = await cli(['release', 'history', '--admin', dayshift.adminUrl], env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /2\.0\s+succeeded/);
    const status = await cli(['release', 'status', '--json', '--admin', dayshift.adminUrl], env);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as Release).state, 'succeeded');
    const watched = await cli(['release', 'status', '--watch', '--admin', dayshift.adminUrl], env);
    assert.equal(watched.code, 0, 'watching an ended release shows it and exits');
    assert.match(watched.stdout, /version 2\.0\s+succeeded/);
  });

  it('prints the plan of the next release without starting it', async () => {
    const plan = await cli(['release', 'start', '--version', '3.0', '--plan', '--admin', dayshift.adminUrl], {
      DAYSHIFT_TOKEN: dayshift.token.value,
    });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /drain prod-a/);
    assert.match(plan.stdout, /shift traffic to prod-b: swap/);
    assert.equal(dayshift.conductor.current()?.version, '2.0', 'a plan starts nothing');
  });
});

/** Waits until the users have completed a few checkouts. */
async function loadGoing(load: LoadGenerator): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (load.result.checkoutsCompleted < 10) {
    if (Date.now() > deadline) throw new Error('the load did not get going');
    await new Promise((r) => setTimeout(r, 50));
  }
}
