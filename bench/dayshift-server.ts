// Dayshift's proxy for the benchmark, in its own process: round-robin over the members given as ports.
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { initialState } from '../src/control/state.js';
import { startProxy } from '../src/proxy/proxy.js';

const ports = (process.argv[2] ?? '').split(',').map(Number);
const config = {
  listen: { http: '127.0.0.1:0' },
  clusters: { bench: { members: ports.map((port) => ({ url: `http://127.0.0.1:${port}` })) } },
  health: { enabled: false },
  sites: { bench: { hosts: ['*'], routes: [{ path: '/', clusters: ['bench'], balance: process.argv[3] ?? 'round-robin' }] } },
};
const loaded = { ...parseConfig(JSON.stringify(config)), baseDir: process.cwd() };
const proxy = await startProxy({ config: loaded, state: initialState(loaded.config), logger: pino({ level: 'silent' }) });
process.stdout.write(`${JSON.stringify({ port: proxy.addresses().http[0]!.port })}\n`);
process.on('SIGTERM', () => void proxy.close(1000).then(() => process.exit(0)));
