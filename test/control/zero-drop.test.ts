// The control plane's proof (issue 3 §6): the origin document's procedure under sustained load, with
// sticky users mid-session and plain users, loses nothing and sends no new user to a drained cluster.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Load } from '../support/load.js';
import { OriginSetup } from '../support/origin-procedure.js';

let setup: OriginSetup;
before(async () => {
  setup = await OriginSetup.start();
});
after(async () => {
  await setup?.stop();
});

test('drain, out, restart and swap both clusters under load: 0 failed, 0 new users to a drained cluster, sessions stay home', async () => {
  const load = new Load({
    port: setup.ds.port,
    plainClients: 4,
    stickyClients: 8,
    stepsPerSession: 6,
    thinkMs: 20,
    maxMs: 60_000,
  });
  const result = await setup.run(load);
  assert.equal(result.failed.length, 0, `failed requests: ${JSON.stringify(result.failed.slice(0, 5))}`);
  assert.equal(
    result.strays.length,
    0,
    `new requests sent to a draining cluster: ${JSON.stringify(result.strays.slice(0, 5))}`,
  );
  assert.equal(
    result.movedSessions,
    0,
    'every sticky session was served by one member from its first request to its last',
  );
  assert.ok(result.sessions > 20, `enough sticky sessions ran (${result.sessions})`);
  const stalls = result.stalls.map((s) => `${s.what}: ${s.ms.toFixed(1)} ms`).join(', ');
  console.log(
    `# zero-drop: ${result.samples.length} requests, ${result.sessions} sticky sessions, 0 failed; longest stall around each change: ${stalls}`,
  );
});
