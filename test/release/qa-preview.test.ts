// QA checks `via: preview`: each cluster is checked on the public host name, pinned to it by a preview
// while it is out, and the body must name the new version and the cluster (the public gets the other
// cluster, on the old version, so only the pin can pass it). The release opens the preview and revokes it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PreviewLink } from '../../src/control/previews.js';
import type { Dayshift } from '../../src/dayshift.js';
import { allUp, api, makeWorld, releaseIn, startInProcess, type World } from './harness.js';

describe('QA checks through a preview on the public host', () => {
  let world: World;
  let dayshift: Dayshift;

  before(async () => {
    world = await makeWorld({
      release: {
        qa: [
          { path: '/cart', via: 'preview', body: 'version <b>$DAYSHIFT_VERSION</b>' },
          { path: '/cart', via: 'preview', body: 'served by cluster <b>$DAYSHIFT_CLUSTER</b>' },
        ],
      },
    });
    dayshift = await startInProcess(world);
    await allUp(dayshift);
  });
  after(async () => {
    await dayshift?.close(1000);
    await world?.close();
  });

  it('passes on the out cluster with the new version, then revokes the preview', async () => {
    assert.equal(
      (await api(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/release/start', { version: '2.0' })).status,
      200,
    );
    const done = await releaseIn(dayshift, ['succeeded', 'failed', 'aborted']);
    assert.equal(done.state, 'succeeded', done.reason);
    for (const cluster of ['prod-a', 'prod-b']) {
      const qa = done.steps.find((s) => s.kind === 'qa-checks' && s.cluster === cluster);
      assert.deepEqual(
        qa?.output,
        [
          `GET http://localhost:${world.httpPort}/cart → 200, body has "version <b>2.0</b>"`,
          `GET http://localhost:${world.httpPort}/cart → 200, body has "served by cluster <b>${cluster}</b>"`,
        ],
        `${cluster}'s checks went through the public host`,
      );
    }
    assert.deepEqual(dayshift.plane.state.previews ?? {}, {}, 'no preview is left behind');
    const audit = await dayshift.audit.tail(200);
    const actor = `release:${done.id}`;
    assert.deepEqual(
      audit.filter((e) => e.who === actor && e.action.startsWith('preview')).map((e) => `${e.action} ${e.target}`),
      ['preview prod-a', 'preview revoke prod-a', 'preview prod-b', 'preview revoke prod-b'],
    );
  });

  it('a preview made after the release names the version the release deployed', async () => {
    const made = await api<PreviewLink>(dayshift.adminUrl, dayshift.token.value, 'POST', '/api/previews', {
      cluster: 'prod-b',
    });
    assert.equal(made.status, 200);
    assert.equal(made.body.version, '2.0');
  });
});
