// Operator control of a running release: abort during a drain or a hook, approval, one release at a
// time, release windows, and the safety rule that keeps a site served.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AuditEntry } from '../../src/control/audit.js';
import type { Dayshift } from '../../src/dayshift.js';
import { LoadGenerator } from '../../src/demo/load.js';
import type { ApprovalStep } from '../../src/release/types.js';
import { allUp, api, cli, makeWorld, releaseIn, startInProcess, until, type World } from './harness.js';

describe('abort during a drain', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('returns the draining cluster to traffic with its weight; no user notices', async () => {
    // A long idle window keeps the drain going while users keep their sessions alive.
    world = await makeWorld({ drainIdle: '60s', release: { hooks: { rollback: { run: 'echo rolling back' } } } });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    const load = new LoadGenerator({
      origin: world.origin,
      host: world.publicHost,
      users: 6,
      thinkMs: 100,
      maxDurationMs: 120_000,
    }).start();
    await until('checkouts under way', () => (load.result.checkoutsCompleted >= 5 ? true : undefined), 20_000);
    await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
    const draining = await until('prod-a draining with sessions', () => {
      const r = dayshift.conductor.current();
      return r?.steps[r.current]?.id === 'prod-a:drain' && r.drain && (r.drain.sessions ?? 0) > 0 ? r : undefined;
    });
    assert.equal(dayshift.plane.state.clusters['prod-a']?.traffic, 'draining');
    assert.ok(draining.drain!.remainingMs! > 0);

    const aborted = await cli(['release', 'abort', '--admin', dayshift.adminUrl], {
      DAYSHIFT_TOKEN: dayshift.token.value,
    });
    assert.equal(aborted.code, 0, aborted.stderr);
    const r = dayshift.conductor.current()!;
    assert.equal(r.state, 'aborted');
    assert.equal(r.steps.find((s) => s.id === 'prod-a:drain')?.state, 'failed');
    assert.ok(
      !r.steps.some((s) => s.kind === 'hook' && s.hook === 'rollback'),
      'nothing was deployed: no rollback hook ran',
    );
    assert.match(r.reason ?? '', /aborted by token:admin/);
    const state = dayshift.plane.state.clusters;
    assert.deepEqual(
      [state['prod-a']?.traffic, state['prod-a']?.weight, state['prod-b']?.traffic],
      ['live', 1, 'live'],
    );
    const result = await load.stop();
    assert.equal(result.failed, 0, result.problems.join('\n'));
    assert.equal(result.cut, 0, result.problems.join('\n'));
  });
});

describe("a release takes over an operator's drain", () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it("gives it the plan's deadline in the release's name, also when the operator forced the drain", async () => {
    world = await makeWorld({ drainDeadline: '45s', release: { approval: 'manual', hooks: {} } });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    const call = (method: string, path: string, body?: unknown) =>
      api<unknown>(dayshift.adminUrl, dayshift.token.value, method, path, body);
    // prod-b out, then prod-a drained past the safety rule: the site keeps no cluster taking new users.
    assert.equal((await call('POST', '/api/clusters/prod-b/traffic', { state: 'out' })).status, 200);
    assert.equal(
      (await call('POST', '/api/clusters/prod-a/traffic', { state: 'draining', deadline: '10m', force: true })).status,
      200,
    );
    const since = dayshift.plane.state.clusters['prod-a']!.drainingSince!;
    const started = (
      await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' })
    ).body;
    const r = await until('the drain step done', () => {
      const step = dayshift.conductor.current()?.steps.find((s) => s.id === 'prod-a:drain');
      return step && step.state !== 'pending' && step.state !== 'running' ? step : undefined;
    });
    assert.equal(r.state, 'succeeded', r.detail);
    const audit = (await call('GET', '/api/audit?limit=100')).body as AuditEntry[];
    const takeOver = audit.find((e) => e.action === 'draining' && e.who === `release:${started.id}`);
    assert.ok(takeOver, 'the release audited taking over the drain');
    assert.equal(
      Date.parse(String(takeOver.detail?.deadline)) - Date.parse(since),
      45_000,
      "the plan's deadline, from the operator's drain start",
    );
    await cli(['release', 'abort', '--admin', dayshift.adminUrl], { DAYSHIFT_TOKEN: dayshift.token.value });
  });
});

describe('one release at a time, with manual approval', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('refuses a second start naming the holder, then goes on when approved', async () => {
    world = await makeWorld({ release: { approval: 'manual', hooks: {} } });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    const env = { DAYSHIFT_TOKEN: dayshift.token.value };
    const first = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
    assert.equal(first.status, 200);
    const waiting = await releaseIn(dayshift, ['awaiting-approval']);
    assert.equal(waiting.steps[waiting.current]?.id, 'prod-a:approval');

    const second = await cli(['release', 'start', '--version', '3.0', '--admin', dayshift.adminUrl], env);
    assert.equal(second.code, 3, 'refused: exit code 3');
    assert.ok(second.stderr.includes(`release ${first.body.id} (version 2.0, started by token:admin`), second.stderr);
    assert.equal(dayshift.conductor.current()?.id, first.body.id);

    // A conductor in another process is kept out by the store lock, which names the holder too.
    const lockHolder = await dayshift.store.lock('release', 'intruder', 5).catch((err: Error) => err);
    assert.ok(
      lockHolder instanceof Error && lockHolder.message.includes(`release ${first.body.id}`),
      String(lockHolder),
    );

    const status = await cli(['release', 'status', '--admin', dayshift.adminUrl], env);
    assert.match(status.stdout, /waiting for approval/);
    const approved = await cli(['release', 'approve', '--admin', dayshift.adminUrl], env);
    assert.equal(approved.code, 0, approved.stderr);
    const next = await until('prod-b awaiting approval', () => {
      const r = dayshift.conductor.current();
      return r?.state === 'awaiting-approval' && r.steps[r.current]?.id === 'prod-b:approval' ? r : undefined;
    });
    assert.equal(next.steps.find((s): s is ApprovalStep => s.id === 'prod-a:approval')?.approvedBy, 'token:admin');
    assert.equal((await cli(['release', 'approve', '--admin', dayshift.adminUrl], env)).code, 0);
    const done = await releaseIn(dayshift, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded', done.reason);
    const nothing = await cli(['release', 'approve', '--admin', dayshift.adminUrl], env);
    assert.equal(nothing.code, 3, 'nothing to approve: refused');
    const audit = await dayshift.audit.tail(100);
    const mine = audit.filter((e) => e.target === `release ${first.body.id}`).map((e) => `${e.who} ${e.action}`);
    assert.deepEqual(mine, ['token:admin release start', 'token:admin release approve', 'token:admin release approve']);
    assert.ok(
      audit.some((e) => e.who === `release:${first.body.id}` && e.action === 'draining' && e.target === 'prod-a'),
      'the traffic changes name the release',
    );
  });
});

describe('release windows', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('refuses a start outside the windows; --wait-window waits in a step that abort ends', async () => {
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    const tomorrow = days[(new Date().getUTCDay() + 1) % 7];
    world = await makeWorld({
      release: { windows: { timezone: 'UTC', allow: [{ days: [tomorrow], from: '09:00', to: '10:00' }] } },
    });
    dayshift = await startInProcess(world);
    const env = { DAYSHIFT_TOKEN: dayshift.token.value };
    const refused = await cli(['release', 'start', '--version', '2.0', '--admin', dayshift.adminUrl], env);
    assert.equal(refused.code, 3);
    assert.match(
      refused.stderr,
      new RegExp(
        `outside the release windows ${tomorrow} 09:00-10:00 \\(UTC\\); the next one opens at .*--wait-window`,
      ),
    );
    assert.equal(dayshift.conductor.current(), undefined, 'nothing started');

    const waiting = await cli(
      ['release', 'start', '--version', '2.0', '--wait-window', '--admin', dayshift.adminUrl],
      env,
    );
    assert.equal(waiting.code, 0, waiting.stderr);
    const r = await until('the window step', () => {
      const current = dayshift.conductor.current();
      return current?.steps[current.current]?.kind === 'window' && current.steps[current.current]?.state === 'running'
        ? current
        : undefined;
    });
    assert.equal(dayshift.plane.state.clusters['prod-a']?.traffic, 'live', 'nothing happens before the window opens');
    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort', {});
    assert.equal(aborted.body.state, 'aborted');
    assert.equal(aborted.body.id, r.id);
  });
});

describe('abort during a hook', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('stops the hook and everything it started, runs the rollback hook, and restores traffic', async () => {
    const pidFile = join(tmpdir(), `dayshift-abort-hook-${process.pid}.pid`);
    world = await makeWorld({
      release: {
        hooks: {
          deploy: { run: `echo $$ > '${pidFile}'; exec sleep 120` },
          rollback: { run: 'echo rolling back $DAYSHIFT_CLUSTER' },
        },
      },
    });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    try {
      await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
      await until('the deploy hook to run', () =>
        existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '' ? true : undefined,
      );
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort', {});
      assert.equal(aborted.body.state, 'aborted');
      assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the hook process is gone');
      const deploy = aborted.body.steps.find((s) => s.id === 'prod-a:deploy');
      assert.equal(deploy?.state, 'failed');
      assert.match(deploy?.detail ?? '', /aborted by token:admin/);
      assert.deepEqual(aborted.body.steps.find((s) => s.id === 'prod-a:rollback')?.output, ['rolling back prod-a']);
      const state = dayshift.plane.state.clusters;
      assert.deepEqual([state['prod-a']?.traffic, state['prod-b']?.traffic], ['live', 'live']);
    } finally {
      rmSync(pidFile, { force: true });
    }
  });
});

describe('the safety rule', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('fails a drain that would leave the public site with no live cluster, and changes nothing', async () => {
    world = await makeWorld();
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    await dayshift.plane.setTraffic({ who: 'test', from: 'local' }, 'prod-b', 'out');
    await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
    const failed = await releaseIn(dayshift, ['failed', 'succeeded']);
    assert.equal(failed.steps[failed.current]?.id, 'prod-a:drain');
    assert.match(failed.reason ?? '', /refusing to draining prod-a: site public \(\/\) would have no live cluster/);
    assert.equal(dayshift.plane.state.clusters['prod-a']?.traffic, 'live', 'prod-a keeps serving');
    const aborted = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/abort', {});
    assert.equal(aborted.body.state, 'aborted');
    assert.deepEqual(
      [dayshift.plane.state.clusters['prod-a']?.traffic, dayshift.plane.state.clusters['prod-b']?.traffic],
      ['live', 'out'],
      'as before the release',
    );
  });
});

describe('a lost release lock', () => {
  let world: World;
  let dayshift: Dayshift;
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('stops before the next step, leaving the release interrupted and resumable', async () => {
    const gate = join(tmpdir(), `dayshift-lock-lost-${process.pid}`);
    world = await makeWorld({
      release: { approval: 'auto', hooks: { deploy: { run: `while [ ! -e '${gate}' ]; do sleep 0.05; done` } } },
    });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
    // The file store's lock cannot lapse; this one says it did, as an etcd lock whose lease expired would.
    let lost = false;
    const store = dayshift.store;
    const lock = store.lock.bind(store);
    store.lock = async (name, holder, ttl) => {
      const taken = await lock(name, holder, ttl);
      return { name: taken.name, holder: taken.holder, release: () => taken.release(), held: async () => !lost };
    };
    try {
      await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' });
      await until('the deploy hook to run', () =>
        dayshift.conductor.current()?.steps.find((s) => s.id === 'prod-a:deploy')?.state === 'running'
          ? true
          : undefined,
      );
      lost = true;
      writeFileSync(gate, '');
      const stopped = await releaseIn(dayshift, ['interrupted', 'failed', 'succeeded']);
      assert.equal(stopped.state, 'interrupted');
      assert.match(stopped.reason ?? '', /release lock was lost .*: resume or abort/);
      const deploy = stopped.steps.findIndex((s) => s.id === 'prod-a:deploy');
      assert.equal(stopped.steps[deploy]?.state, 'succeeded');
      assert.equal(stopped.current, deploy + 1);
      assert.equal(stopped.steps[deploy + 1]?.state, 'pending', 'the next step never started');
      // The state is visible before the conductor has saved it and written the audit entry: wait for that.
      await until(
        'the interruption in the audit log',
        async () =>
          (await dayshift.audit.tail(100)).some(
            (e) => e.action === 'release interrupted' && e.target === `release ${stopped.id}`,
          )
            ? true
            : undefined,
        10_000,
      );

      lost = false;
      const resumed = await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/resume', {});
      assert.equal(resumed.status, 200);
      const done = await releaseIn(dayshift, ['succeeded', 'failed']);
      assert.equal(done.state, 'succeeded', done.reason);
    } finally {
      rmSync(gate, { force: true });
    }
  });
});
