// Dayshift's proxy in worker processes for the benchmark: a main process (this one) holding the
// listening socket and N workers serving it, round-robin over the members given as ports.
// Arguments: member ports (comma-separated), number of workers. Prints the port and every pid (the
// main's first) so that the bench adds up their CPU time.
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { AuditLog } from '../src/control/audit.js';
import { initialState } from '../src/control/desired-state.js';
import { SessionTracker } from '../src/control/session-tracker.js';
import { WorkerPool } from '../src/workers/pool.js';

const ports = (process.argv[2] ?? '').split(',').map(Number);
const count = Number(process.argv[3] ?? 2);
const config = {
  listen: { http: '127.0.0.1:0' },
  clusters: { bench: { members: ports.map((port) => ({ url: `http://127.0.0.1:${port}` })) } },
  health: { enabled: false },
  log: { level: 'silent' },
  sites: { bench: { hosts: ['*'], routes: [{ path: '/', clusters: ['bench'], balance: 'round-robin' }] } },
};
const loaded = { ...parseConfig(JSON.stringify(config)), baseDir: process.cwd() };
const pool = await WorkerPool.start({
  count,
  config: loaded,
  state: initialState(loaded.config),
  logger: pino({ level: 'silent' }),
  sessions: new SessionTracker(loaded.config.drain.max_sessions),
  cookieSecret: 'bench-cookie-secret-0123456789',
  audit: new AuditLog(process.cwd()),
});
const { http } = pool.addresses();
process.stdout.write(`${JSON.stringify({ port: http[0]!.port, pids: [process.pid, ...pool.pids()] })}\n`);
process.on('SIGTERM', () => void pool.close(1000).then(() => process.exit(0)));
