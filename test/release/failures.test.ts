import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { Dayshift } from '../../src/dayshift.js';
import { allUp, api, DAYSHIFT, makeWorld, releaseIn, startInProcess, type World } from './harness.js';

/** Who serves new sessions on the public site now. */
async function servingClusters(world: World, n = 6): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const response = await fetch(`${world.origin}/cart`, { headers: { host: world.publicHost } });
    await response.text();
    assert.equal(response.status, 200);
    seen.add(response.headers.get('x-demo-cluster') ?? '?');
  }
  return seen;
}

function assertOnOldCluster(dayshift: Dayshift): void {
  const state = dayshift.plane.state.clusters;
  assert.equal(state['prod-a']?.traffic, 'out', 'the cluster being released stays out');
  assert.equal(state['prod-b']?.traffic, 'live', 'traffic stays on the old cluster');
}

async function setUp(release: Record<string, unknown>): Promise<{ world: World; dayshift: Dayshift }> {
  const world = await makeWorld({ release });
  const dayshift = await startInProcess(world);
  await allUp(dayshift);
  return { world, dayshift };
}

describe('a failing hook', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('fails the release with traffic on the old cluster; retry re-runs the hook once it is fixed', async () => {
    const flag = join(tmpdir(), `dayshift-hook-flag-${process.pid}`);
    await writeFile(flag, 'fail');
    ({ world, dayshift } = await setUp({
      hooks: { deploy: { run: `echo deploying $DAYSHIFT_CLUSTER; test ! -e '${flag}'` } },
    }));
    try {
      await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
      const failed = await releaseIn(dayshift, ['failed', 'succeeded']);
      assert.equal(failed.state, 'failed');
      const step = failed.steps[failed.current]!;
      assert.equal(step.id, 'prod-a:deploy');
      assert.equal(step.state, 'failed');
      assert.match(step.detail ?? '', /exited with 1/);
      assert.deepEqual(step.output, ['deploying prod-a']);
      assertOnOldCluster(dayshift);
      assert.deepEqual(await servingClusters(world), new Set(['prod-b']));

      await rm(flag);
      const retried = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/retry', {});
      assert.equal(retried.status, 200);
      const done = await releaseIn(dayshift, ['succeeded', 'failed']);
      assert.equal(done.state, 'succeeded', done.reason);
      assert.equal(done.steps.find((s) => s.id === 'prod-a:deploy')?.state, 'succeeded');
    } finally {
      await rm(flag, { force: true });
    }
  });
});

describe('a failing health gate', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('fails the release with traffic on the old cluster; abort runs the rollback hook and restores traffic', async () => {
    ({ world, dayshift } = await setUp({
      health: { timeout: '3s', stable: '500ms' },
      hooks: {
        deploy: { run: `${DAYSHIFT} demo-deploy`, per: 'member' },
        rollback: { run: `DAYSHIFT_VERSION=1.0 ${DAYSHIFT} demo-deploy`, per: 'member' },
      },
    }));
    await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0-unhealthy' });
    const failed = await releaseIn(dayshift, ['failed', 'succeeded']);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.steps[failed.current]?.id, 'prod-a:health');
    assert.match(failed.reason ?? '', /health gate timed out .*a1 .* is down/);
    assertOnOldCluster(dayshift);
    assert.deepEqual(await servingClusters(world), new Set(['prod-b']));

    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort', {});
    assert.equal(aborted.status, 200);
    assert.equal(aborted.body.state, 'aborted');
    assert.equal(aborted.body.steps.find((s) => s.id === 'prod-a:rollback')?.state, 'succeeded');
    const apps = world.apps.apps.filter((a) => a.options.cluster === 'prod-a');
    assert.deepEqual(
      apps.map((a) => a.version),
      ['1.0', '1.0'],
      'the rollback hook put the old version back',
    );
    const state = dayshift.plane.state.clusters;
    assert.deepEqual(
      [state['prod-a']?.traffic, state['prod-a']?.weight, state['prod-b']?.traffic],
      ['live', 1, 'live'],
    );
  });
});

describe("a health gate with the proxy's active checks off (health.enabled: false, as imports once wrote)", () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('probes the members itself: an unhealthy build fails it instead of counting as up unchecked', async () => {
    world = await makeWorld({
      release: {
        health: { timeout: '3s', stable: '500ms' },
        hooks: { deploy: { run: `${DAYSHIFT} demo-deploy`, per: 'member' } },
      },
    });
    const config = parse(await readFile(world.configFile, 'utf8')) as { health?: Record<string, unknown> };
    config.health = { ...config.health, enabled: false };
    await writeFile(world.configFile, stringify(config));
    dayshift = await startInProcess(world);
    await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0-unhealthy' });
    const failed = await releaseIn(dayshift, ['failed', 'succeeded']);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.steps[failed.current]?.id, 'prod-a:health');
    assert.match(failed.reason ?? '', /health gate timed out .*a1 .* is down/);
  });
});

describe('a failing QA check', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('fails the release naming the check, traffic stays on the old cluster; retry checks again; abort keeps the deployed cluster out without a rollback hook', async () => {
    ({ world, dayshift } = await setUp({
      qa: [
        { path: '/health', status: 200 },
        { path: '/health', body: 'version-that-is-not-there' },
      ],
    }));
    await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
    const failed = await releaseIn(dayshift, ['failed', 'succeeded']);
    assert.equal(failed.state, 'failed');
    const step = failed.steps[failed.current]!;
    assert.equal(step.id, 'prod-a:qa');
    assert.match(
      step.detail ?? '',
      /QA check GET http:\/\/qa-a\.localhost:\d+\/health: the body does not contain "version-that-is-not-there"/,
    );
    assert.ok(
      step.output?.some((l) => /GET .*\/health → 200/.test(l)),
      'the passing check is in the output',
    );
    assertOnOldCluster(dayshift);

    const retried = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/retry', {});
    assert.equal(retried.status, 200);
    const again = await releaseIn(dayshift, ['failed', 'succeeded']);
    assert.equal(again.steps[again.current]?.id, 'prod-a:qa');
    assert.notEqual(again.steps[again.current]?.startedAt, step.startedAt, 'the step ran again');

    // This plan has no rollback hook: prod-a, deployed to, must not come back with the new version.
    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort', {});
    assert.equal(aborted.body.state, 'aborted');
    assert.match(aborted.body.reason ?? '', /no rollback hook: prod-a was deployed to and stays out/);
    assertOnOldCluster(dayshift);
    assert.deepEqual(await servingClusters(world), new Set(['prod-b']));
  });
});
