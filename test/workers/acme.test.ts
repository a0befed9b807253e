// ACME with workers: 2, against Debian's pebble. The main process orders the certificate; the workers
// answer the CA's challenge (http-01 on the http listener, tls-alpn-01 in the TLS handshake) and serve
// the certificate, each of them.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { freePort } from '../../src/ports.js';
import type { WorkerPool } from '../../src/workers/pool.js';
import { startTestDayshift, type TestDayshift } from '../support/dayshift.js';
import { startMember } from '../support/members.js';
import { Pebble } from '../support/pebble.js';
import { waitFor } from '../support/process.js';

/** Whether the listener presents, for `host`, a certificate that verifies against `ca`. */
function verifies(port: number, host: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: host, ca, rejectUnauthorized: false }, () => {
      resolve(socket.authorized);
      socket.end();
    });
    socket.on('error', () => resolve(false));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

for (const challenge of ['http-01', 'tls-alpn-01'] as const) {
  test(`workers: 2 answer the ${challenge} challenge the main's order needs, and each serves the certificate`, async (t) => {
    const [httpPort, httpsPort, closed] = await Promise.all([freePort(), freePort(), freePort()]);
    const pebble = await Pebble.create(t, {
      httpPort: challenge === 'http-01' ? httpPort : closed,
      tlsPort: challenge === 'tls-alpn-01' ? httpsPort : closed,
    });
    if (!pebble) return;
    const member = await startMember('m1');
    const dir = await mkdtemp(join(tmpdir(), 'dayshift-workers-acme-'));
    let ds: TestDayshift | undefined;
    try {
      ds = await startTestDayshift(
        {
          workers: 2,
          // Without an http listener, tls-alpn-01 is the only challenge Dayshift can answer.
          listen: {
            ...(challenge === 'http-01' ? { http: `127.0.0.1:${httpPort}` } : {}),
            https: `127.0.0.1:${httpsPort}`,
          },
          acme: { directory: pebble.directory, email: 'ops@shop.test', ca_file: pebble.caFile },
          clusters: { a: { members: [{ url: member.url }], health: { enabled: false } } },
          sites: { shop: { hosts: ['shop.test'], routes: [{ clusters: ['a'] }], tls: { acme: true } } },
        },
        dir,
      );
      const root = await pebble.root();
      await waitFor(
        `a certificate from pebble\n${pebble.log.slice(-2000)}`,
        async () => ((await verifies(httpsPort, 'shop.test', root)) ? true : undefined),
        60_000,
        250,
      );
      const pool = ds.dayshift.proxy as WorkerPool;
      for (const index of [0, 1]) {
        const others = pool.pids().filter((_, i) => i !== index);
        for (const pid of others) process.kill(pid, 'SIGSTOP');
        try {
          assert.equal(await verifies(httpsPort, 'shop.test', root), true, `worker ${index + 1} serves it`);
        } finally {
          for (const pid of others) process.kill(pid, 'SIGCONT');
        }
      }
    } finally {
      await ds?.stop();
      await member.close();
      await pebble.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
