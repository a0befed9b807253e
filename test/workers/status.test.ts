// The workers as status shows them, through a real `dayshift start` (workers: 2) started with Node options:
// each worker runs with the main's options less the inspector's, and after kill -9 of one, /api/status,
// `dayshift status` (--json and the table) and /metrics show its restart, its new pid and how it ended.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import type { StatusReport } from '../../src/observe/status-report.js';
import { freePort } from '../../src/ports.js';
import type { WorkerStatus } from '../../src/workers/pool.js';
import { CLI, runCli } from '../support/cli.js';
import { startMember, type TestMember } from '../support/members.js';
import { Foreground, waitFor } from '../support/process.js';

/** Preloaded in every process (--import): records the Node options the process runs with, under its pid. */
const MARK = `import { writeFileSync } from 'node:fs';
writeFileSync(new URL(\`./argv-\${process.pid}.json\`, import.meta.url), JSON.stringify(process.execArgv));
`;

describe('workers: 2 in status, started with Node options', () => {
  let dir: string;
  let config: string;
  let member: TestMember;
  let main: Foreground;
  let adminUrl: string;
  let token: string;
  let inspectPort: number;
  /** The options every process of this Dayshift shares. */
  let shared: string[];

  const status = async (): Promise<StatusReport> => {
    const res = await fetch(`${adminUrl}/api/status`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as StatusReport;
  };
  const execArgvOf = async (pid: number): Promise<string[]> =>
    JSON.parse(await readFile(join(dir, `argv-${pid}.json`), 'utf8')) as string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dayshift-workers-status-'));
    member = await startMember('m1');
    const [port, admin] = await Promise.all([freePort(), freePort()]);
    inspectPort = await freePort();
    adminUrl = `http://127.0.0.1:${admin}`;
    config = join(dir, 'dayshift.yaml');
    await writeFile(join(dir, 'mark.mjs'), MARK);
    await writeFile(
      config,
      stringify({
        workers: 2,
        listen: { http: `127.0.0.1:${port}` },
        admin: { listen: `127.0.0.1:${admin}` },
        state_dir: join(dir, 'state'),
        log: { format: 'json' },
        clusters: { web: { members: [{ url: member.url }] } },
        health: { enabled: false },
        sites: { public: { hosts: ['*'], routes: [{ path: '/', clusters: ['web'] }] } },
      }),
    );
    shared = ['--max-old-space-size=200', '--enable-source-maps', `--import=${pathToFileURL(join(dir, 'mark.mjs'))}`];
    main = new Foreground(
      process.execPath,
      [...shared, `--inspect=127.0.0.1:${inspectPort}`, CLI, 'start', '--config', config],
      dir,
    );
    token = await waitFor(
      'the admin token',
      async () =>
        main.running
          ? (await readFile(join(dir, 'state', 'admin.token'), 'utf8')).trim() || undefined
          : Promise.reject(new Error(main.log)),
      20_000,
    );
    await waitFor(
      'both workers serving',
      async () => ((await status()).workers?.every((w) => w.state === 'serving') ? true : undefined),
      20_000,
    );
  });

  after(async () => {
    await main?.stop();
    await member?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("each worker runs with the main's Node options, less the inspector's", async () => {
    const workers = (await status()).workers!;
    assert.equal(workers.length, 2);
    for (const { worker, pid } of workers)
      assert.deepEqual(await execArgvOf(pid), shared, `worker ${worker} (pid ${pid})`);
    assert.deepEqual(await execArgvOf(main.child.pid!), [...shared, `--inspect=127.0.0.1:${inspectPort}`], 'the main');
    // The main's debugger listens on its port, which no worker tried to take.
    assert.match(main.log, new RegExp(`Debugger listening on ws://127\\.0\\.0\\.1:${inspectPort}/`));
    assert.doesNotMatch(main.log, /address already in use/);
  });

  test('status lists every worker; after kill -9, its restart, new pid and how it ended, in the API and the CLI', async () => {
    const before = (await status()).workers!;
    assert.deepEqual(
      before.map(({ worker, state, restarts, lastExit }) => ({ worker, state, restarts, lastExit })),
      [
        { worker: 1, state: 'serving', restarts: 0, lastExit: undefined },
        { worker: 2, state: 'serving', restarts: 0, lastExit: undefined },
      ],
    );
    for (const w of before)
      assert.ok(Date.parse(w.startedAt) <= Date.now(), `worker ${w.worker} started ${w.startedAt}`);
    const [victim, survivor] = before as [WorkerStatus, WorkerStatus];

    process.kill(victim.pid, 'SIGKILL');
    const replaced = await waitFor(
      'worker 1 replaced and serving',
      async () => {
        const workers = (await status()).workers!;
        return workers[0]!.restarts === 1 && workers[0]!.state === 'serving' ? workers : undefined;
      },
      20_000,
    );
    const [replacement] = replaced as [WorkerStatus];
    assert.notEqual(replacement.pid, victim.pid, 'a new process');
    assert.deepEqual(replacement.lastExit && { pid: replacement.lastExit.pid, signal: replacement.lastExit.signal }, {
      pid: victim.pid,
      signal: 'SIGKILL',
    });
    assert.ok(Date.parse(replacement.startedAt) >= Date.parse(replacement.lastExit!.at), 'started after the death');
    assert.deepEqual(replaced[1], survivor, 'worker 2 left alone');
    assert.deepEqual(await execArgvOf(replacement.pid), shared, 'the replacement has the options too');

    const json = await runCli(['status', '--json', '--config', config]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as StatusReport).workers, replaced);

    const human = await runCli(['status', '--config', config]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^WORKER +PID +STATE +STARTED +RESTARTS +LAST EXIT$/m);
    assert.match(
      human.stdout,
      new RegExp(`^1 +${replacement.pid} +serving +\\S+ +1 +SIGKILL \\(pid ${victim.pid}\\) at \\S+$`, 'm'),
    );
    assert.match(human.stdout, new RegExp(`^2 +${survivor.pid} +serving +\\S+ +0$`, 'm'));

    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    assert.match(metrics, /^dayshift_worker_restarts_total\{worker="1"\} 1$/m);
    assert.match(metrics, /^dayshift_worker_restarts_total\{worker="2"\} 0$/m);
    assert.match(metrics, /^dayshift_workers_serving 2$/m);
  });
});
