// A loopback port that was free a moment ago: bind port 0, read it, close it. For the demo, the tests and
// the benchmarks, which start servers on ports chosen at run time (and for a member that refuses
// connections, in tests).
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
