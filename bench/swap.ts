// The origin procedure under load (issue 3 §6), as a benchmark: the same figures the zero-drop test
// asserts — failed requests, new users sent to a draining cluster, sessions moved — plus the longest
// interval without a response around each change.
import { Load } from '../test/support/load.js';
import { OriginSetup } from '../test/support/origin-procedure.js';

export async function runSwapBench(log: (line: string) => void): Promise<void> {
  log('swap: the origin procedure (drain, out, restart, live, drain, out) under load through Dayshift');
  const setup = await OriginSetup.start();
  try {
    const load = new Load({
      port: setup.ds.port,
      plainClients: 16,
      stickyClients: 16,
      stepsPerSession: 6,
      thinkMs: 0,
      maxMs: 60_000,
    });
    const started = performance.now();
    const result = await setup.run(load, (change) =>
      log(`swap: ${((change.at - started) / 1000).toFixed(1)}s ${change.what}`),
    );
    const seconds = (performance.now() - started) / 1000;
    log('');
    log('Origin procedure under load (16 plain + 16 sticky keep-alive clients, loopback)');
    log(
      `  requests        ${result.samples.length} in ${seconds.toFixed(1)} s (${(result.samples.length / seconds).toFixed(0)} req/s)`,
    );
    log(`  failed          ${result.failed.length}`);
    log(`  new users to a draining cluster  ${result.strays.length}`);
    log(`  sticky sessions ${result.sessions}, served by more than one member: ${result.movedSessions}`);
    log('  longest stall around each change:');
    for (const stall of result.stalls) log(`    ${stall.what.padEnd(14)} ${stall.ms.toFixed(1)} ms`);
  } finally {
    await setup.stop();
  }
}
