// A loopback port that was free a moment ago: bind port 0, read it, close it. For the demo, the tests and
// the benchmarks, which start servers on ports chosen at run time (and for a member that refuses
// connections, in tests).
import { createServer } from 'node:net';

/**
 * Ports this process has handed out. The system may give a closed port again at once, so two callers
 * that pick ports before either listens (pebble's ports after Dayshift's, say) could get the same one.
 */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await boundAndReleased();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function boundAndReleased(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
