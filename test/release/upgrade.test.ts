// A release running across `dayshift upgrade`: the old generation hands it over at a step safe to
// repeat, and the new one carries it on to the end without an operator's resume.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Release } from '../../src/release/types.js';
import { api, cli, makeWorld, startChild, until, type World } from './harness.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a release across an upgrade', () => {
  let world: World | undefined;
  let server: Awaited<ReturnType<typeof startChild>> | undefined;
  let next: number | undefined;
  after(async () => {
    await server?.stop();
    if (next !== undefined && alive(next)) {
      process.kill(next, 'SIGTERM');
      await until('the new generation to stop', () => (alive(next!) ? undefined : true), 60_000);
    }
    await world?.close();
  });

  it('is refused while a step that is not safe to repeat runs, and the release goes on in the old one', async () => {
    world = await makeWorld({
      release: {
        hooks: { before: { run: 'echo run >> before-runs; while [ ! -e go ]; do sleep 0.1; done', title: 'before' } },
      },
    });
    server = await startChild(world);
    const token = (await readFile(join(world.dir, 'state', 'admin.token'), 'utf8')).trim();
    const env = { DAYSHIFT_TOKEN: token };
    const admin = ['--admin', server.adminUrl];
    const start = await cli(['release', 'start', '--version', '2.0', ...admin], env);
    assert.equal(start.code, 0, start.stderr);
    await until('the before hook to run', () => (existsSync(join(world!.dir, 'before-runs')) ? true : undefined));

    const go = join(world.dir, 'go');
    const refused = await cli(['upgrade', ...admin], env).finally(() => writeFile(go, ''));
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(
      refused.stderr,
      /is running "hook before: before", which is not safe to repeat: upgrade once it is done/,
    );
    const done = await until(
      'the release to end',
      async () => {
        const r = await api<Release>(server!.adminUrl, token, 'GET', '/api/release');
        return ['succeeded', 'failed', 'aborted', 'interrupted'].includes(r.body.state) ? r.body : undefined;
      },
      120_000,
    );
    assert.equal(done.state, 'succeeded', done.reason);
    assert.equal((await readFile(join(world.dir, 'before-runs'), 'utf8')).trim().split('\n').length, 1);
    assert.equal(server.child.exitCode, null, 'the old generation serves on');
    await server.stop();
    server = undefined;
    await world.close();
    world = undefined;
  });

  it('is handed to the new generation, which repeats the stopped step and completes the release', async () => {
    const runs = (dir: string) => join(dir, 'before-runs');
    world = await makeWorld({
      release: {
        // The first run of the hook lasts long enough for the upgrade to stop it; a repeat is quick.
        hooks: {
          before: {
            run: `echo run >> before-runs; if [ "$(wc -l < before-runs)" -eq 1 ]; then sleep 30; fi`,
            repeatable: true,
            title: 'before',
          },
        },
      },
    });
    server = await startChild(world);
    const token = (await readFile(join(world.dir, 'state', 'admin.token'), 'utf8')).trim();
    const env = { DAYSHIFT_TOKEN: token };
    const admin = ['--admin', server.adminUrl];

    const start = await cli(['release', 'start', '--version', '2.0', ...admin], env);
    assert.equal(start.code, 0, start.stderr);
    await until('the before hook to run', () => (existsSync(runs(world!.dir)) ? true : undefined));

    const oldExit = once(server.child, 'exit');
    const upgraded = await cli(['upgrade', '--json', ...admin], env);
    assert.equal(upgraded.code, 0, upgraded.stderr);
    const result = JSON.parse(upgraded.stdout) as { old: { pid: number }; new: { pid: number }; release?: string };
    next = result.new.pid;
    assert.equal(result.old.pid, server.child.pid);
    const [code] = (await oldExit) as [number];
    assert.equal(code, 0, 'the old generation exits');
    server = undefined;

    const done = await until(
      'the release to end in the new generation',
      async () => {
        const r = await api<Release>(`http://127.0.0.1:${world!.adminPort}`, token, 'GET', '/api/release');
        return ['succeeded', 'failed', 'aborted', 'interrupted'].includes(r.body.state) ? r.body : undefined;
      },
      120_000,
    );
    assert.equal(done.state, 'succeeded', done.reason);
    assert.equal(result.release, done.id, 'the upgrade names the release it handed over');
    assert.equal(done.handedOver, undefined);
    const lines = (await readFile(runs(world.dir), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 2, 'the step stopped by the upgrade ran again in the new generation');
    assert.ok(alive(next), 'the new generation serves on');
  });
});
