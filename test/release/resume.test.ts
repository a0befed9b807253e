import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { Release } from '../../src/release/types.js';
import { api, cli, DAYSHIFT, makeWorld, startChild, until, type World } from './harness.js';

describe('kill -9 during a deploy', () => {
  let world: World;
  let server: Awaited<ReturnType<typeof startChild>> | undefined;
  let hookPid: number | undefined;
  after(async () => {
    await server?.stop();
    if (hookPid !== undefined) {
      try {
        process.kill(hookPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await world?.close();
  });

  it('leaves an interrupted release that resume continues at the deploy step, after confirming it', async () => {
    world = await makeWorld();
    const started = join(world.dir, 'deploy-started');
    const pidFile = join(world.dir, 'deploy.pid');
    // The first deploy hangs (and says so); once that has happened, deploys work.
    const deploy = `if [ -e '${started}' ]; then ${DAYSHIFT} demo-deploy; else echo $$ > '${pidFile}'; touch '${started}'; exec sleep 120; fi`;
    world = await rewriteRelease(world, { hooks: { deploy: { run: deploy, per: 'member', timeout: '5m' } } });
    server = await startChild(world);
    const token = (await readFile(join(world.dir, 'state', 'admin.token'), 'utf8')).trim();
    const env = { DAYSHIFT_TOKEN: token };
    await until(
      'members up',
      async () => {
        const status = await api<{ clusters: { members: { health: string }[] }[] }>(
          server!.adminUrl,
          token,
          'GET',
          '/api/status',
        );
        return status.body.clusters.every((c) => c.members.every((m) => m.health === 'up')) ? true : undefined;
      },
      15_000,
    );

    const start = await cli(['release', 'start', '--version', '2.0', '--admin', server.adminUrl], env);
    assert.equal(start.code, 0, start.stderr);
    await until('the deploy hook to run', () => (existsSync(started) ? true : undefined));
    hookPid = Number((await readFile(pidFile, 'utf8')).trim());
    const running = await api(server.adminUrl, token, 'GET', '/api/release');
    assert.equal(running.body.steps[running.body.current]?.id, 'prod-a:deploy');

    const exited = once(server.child, 'exit');
    server.child.kill('SIGKILL');
    await exited;
    process.kill(hookPid, 'SIGKILL');
    hookPid = undefined;

    server = await startChild(world);
    const interrupted = await api(server.adminUrl, token, 'GET', '/api/release');
    assert.equal(interrupted.body.state, 'interrupted');
    const step = interrupted.body.steps[interrupted.body.current]!;
    assert.deepEqual([step.id, step.state, step.repeatable], ['prod-a:deploy', 'running', false]);
    assert.equal(interrupted.body.steps.find((s) => s.id === 'prod-a:drain')?.state, 'succeeded');
    const status = await api<{ clusters: { name: string; traffic: string }[] }>(
      server.adminUrl,
      token,
      'GET',
      '/api/status',
    );
    assert.deepEqual(
      status.body.clusters.map((c) => [c.name, c.traffic]),
      [
        ['prod-a', 'out'],
        ['prod-b', 'live'],
      ],
      'the traffic state survived kill -9',
    );

    const unconfirmed = await cli(['release', 'resume', '--admin', server.adminUrl], env);
    assert.equal(unconfirmed.code, 3, 'a step that is not safe to repeat needs --yes');
    assert.match(unconfirmed.stderr, /not safe to repeat.*--yes/);
    const confirmed = await cli(['release', 'resume', '--yes', '--admin', server.adminUrl], env);
    assert.equal(confirmed.code, 0, confirmed.stderr);

    const done = await until(
      'the release to end',
      async () => {
        const r = (await api(server!.adminUrl, token, 'GET', '/api/release')).body;
        return ['succeeded', 'failed', 'aborted'].includes(r.state) ? r : undefined;
      },
      90_000,
    );
    assert.equal(done.state, 'succeeded', done.reason);
    for (const app of world.apps.apps) assert.equal(app.version, '2.0', `${app.options.member} runs ${app.version}`);
    const history = await api<Release[]>(server.adminUrl, token, 'GET', '/api/releases');
    assert.equal(history.body.length, 1, 'one release, resumed, not two');
  });
});

/** Rewrites the world's config with a different release plan (before Dayshift starts). */
async function rewriteRelease(world: World, release: Record<string, unknown>): Promise<World> {
  const config = parse(await readFile(world.configFile, 'utf8')) as { release: Record<string, unknown> };
  config.release = { ...config.release, ...release };
  await writeFile(world.configFile, stringify(config));
  return world;
}
