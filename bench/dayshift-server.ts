// Dayshift's proxy for the benchmark, in its own process: round-robin over the members given as ports.
// Arguments: member ports (comma-separated), balance policy, member-side engine (dayshift, undici or
// node-http), and optionally a certificate and key file for an HTTPS listener as well.
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { initialState } from '../src/control/desired-state.js';
import { startProxy } from '../src/proxy/proxy.js';
import { registerTransport } from '../src/proxy/transport-factory.js';
import { createNodeHttpTransport } from './node-http-transport.js';
import { createUndiciTransport } from './undici-transport.js';

// `undici` and `node-http` swap the member-side engine for the comparison; the default is Dayshift's own.
if (process.argv[4] === 'node-http') registerTransport('http:', createNodeHttpTransport);
if (process.argv[4] === 'undici') registerTransport('http:', createUndiciTransport);

const ports = (process.argv[2] ?? '').split(',').map(Number);
const [cert, key] = process.argv.slice(5);
const config = {
  // The certificate is the listener's default one, so it answers whatever name a client sends (or none).
  listen: { http: '127.0.0.1:0', ...(cert && key ? { https: '127.0.0.1:0', tls: { cert, key } } : {}) },
  clusters: { bench: { members: ports.map((port) => ({ url: `http://127.0.0.1:${port}` })) } },
  health: { enabled: false },
  sites: {
    bench: { hosts: ['*'], routes: [{ path: '/', clusters: ['bench'], balance: process.argv[3] ?? 'round-robin' }] },
  },
};
const loaded = { ...parseConfig(JSON.stringify(config)), baseDir: process.cwd() };
const proxy = await startProxy({
  config: loaded,
  state: initialState(loaded.config),
  logger: pino({ level: 'silent' }),
});
const { http, https } = proxy.addresses();
process.stdout.write(`${JSON.stringify({ port: http[0]!.port, httpsPort: https[0]?.port })}\n`);
process.on('SIGTERM', () => void proxy.close(1000).then(() => process.exit(0)));
