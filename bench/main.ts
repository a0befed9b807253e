// `npm run bench`: loopback load through Dayshift, directly to the members, through the `http-proxy`
// package, and through HAProxy and nginx when installed — same members, interleaved rounds, bounded
// time. Two figures: peak throughput at fixed concurrency and latency at a fixed moderate rate, spread
// on 1 ms ticks (wrk scheduled by bench/fixed-rate.lua; else autocannon and its overallRate); with wrk also the
// same rate in bursts (bench/burst.lua). Settings by environment: BENCH_ROUNDS (3), BENCH_SECONDS (5),
// BENCH_CONNECTIONS (50), BENCH_RATE (2000), BENCH_MEMBERS (2), BENCH_ENGINES=1 to add Dayshift on
// undici's and on node:http's client (the engine comparison), BENCH_SWAP=0 / BENCH_AJP=0 to leave out the origin
// procedure under load (bench/swap.ts) and AJP against HTTP to Tomcat (bench/ajp.ts). Every proxy's CPU
// time per request is measured (bench/cpu.ts). HTTPS rows follow, Dayshift against HAProxy (keep-alive, a
// new connection with a full handshake per request, HTTP/2 by h2load: bench/https.ts), BENCH_TLS_SECONDS
// (3) each; BENCH_HTTP=0 / BENCH_TLS=0 leave out the plain-HTTP or the HTTPS tables.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { selfSigned } from '../test/support/certs.js';
import { findExecutable } from '../test/support/peers.js';
import { Foreground, waitFor } from '../test/support/process.js';
import { runAjpBench } from './ajp.js';
import { withCpu } from './cpu.js';
import { resumptionOff, runH2load, sessionResumed, type H2Count } from './https.js';
import { handleInterrupts, interrupted, onInterrupt } from './interrupt.js';
import { runSwapBench } from './swap.js';
import { freePort } from '../src/ports.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 2);
/** Also run Dayshift with undici and with node:http's client as its member-side engine (how it was chosen). */
const ENGINES = process.env.BENCH_ENGINES === '1';
const HTTP = process.env.BENCH_HTTP !== '0';
const TLS = process.env.BENCH_TLS !== '0';
const TLS_SECONDS = Number(process.env.BENCH_TLS_SECONDS ?? 3);
/** Dayshift `workers` counts measured at peak (a main process and this many workers). */
const WORKER_COUNTS = HTTP ? [1, 2] : [];
/** HAProxy's `nbthread` settings measured at peak; the first one is `haproxy` in every table. */
const HAPROXY_THREADS = [1, 2];
const here = fileURLToPath(new URL('.', import.meta.url));

interface Target {
  name: string;
  port: number;
  /** The proxy's process, whose CPU time is measured (none for `direct`); with workers, the main's and theirs. */
  pid?: number | number[];
  /** Measured at peak only (a variant of another target, e.g. HAProxy on 2 threads). */
  peakOnly?: boolean;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Answers the load generator counted. */
  requests: number;
  /** The proxy's CPU µs (user + system) per answer over the run. */
  cpuUs?: number;
}

/** Every process the bench starts but wrk: each is stopped and waited for before its directory goes. */
const children: Foreground[] = [];
/** Ends a wrk run (SIGTERM) when the bench is interrupted. */
const wrkAbort = new AbortController();
let wrkRun: Promise<unknown> | undefined;

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Starts a child in `dir`, in the foreground; its output is kept for error messages. */
function start(command: string, args: string[], dir: string): Foreground {
  const proc = new Foreground(command, args, dir);
  children.push(proc);
  return proc;
}

/** SIGTERM to every child, SIGKILL to any still there after 5 s, and waits until all have exited. */
async function stopAll(): Promise<void> {
  await Promise.all(children.map((proc) => proc.stop()));
}

/** Spawns a node script and reads the JSON line it prints when ready; fails if the script exits first. */
async function spawnNode<T>(
  script: string,
  args: string[],
  dir: string,
  nodeArgs: string[] = [],
): Promise<{ proc: Foreground; info: T }> {
  const proc = start(process.execPath, [...nodeArgs, join(here, script), ...args], dir);
  const line = once(createInterface({ input: proc.child.stdout! }), 'line').then(([text]) => String(text));
  const exit = once(proc.child, 'exit').then(
    ([code, signal]) =>
      `${script} exited (${signal ? `signal ${String(signal)}` : `code ${String(code)}`}) before it was ready`,
  );
  const first = await Promise.race([line.then((text) => ({ text })), exit.then((error) => ({ error }))]);
  if ('error' in first) throw new Error(proc.log ? `${first.error}:\n${proc.log}` : first.error);
  return { proc, info: JSON.parse(first.text) as T };
}

/** Polls GET / until it answers 200, or fails after 10 s (with the child's last output when there is one). */
async function ready(port: number, name: string, proc?: Foreground): Promise<void> {
  await waitFor(`${name} to answer on port ${port}`, async () => {
    if (proc && !proc.running) throw new Error(`${name} exited: ${proc.log}`);
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    return ok ? true : undefined;
  });
}

/**
 * HAProxy on `threads` threads; with `pem` (certificate and key in one file), also an HTTPS frontend that
 * resumes no session (no tickets, no session cache), as Dayshift in the bench.
 */
async function startHaproxy(
  binary: string,
  ports: number[],
  dir: string,
  threads: number,
  pem?: string,
): Promise<{ target: Target; httpsPort?: number }> {
  const name = threads === 1 ? 'haproxy' : `haproxy-${threads}t`;
  const port = await freePort();
  const httpsPort = pem ? await freePort() : undefined;
  const file = join(dir, `${name}.cfg`);
  await writeFile(
    file,
    `global\n  nbthread ${threads}\n  maxconn 4000\n${pem ? '  tune.ssl.cachesize 0\n' : ''}defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n  http-reuse always\n` +
      `frontend fe\n  bind 127.0.0.1:${port}\n  option forwardfor\n  default_backend be\n` +
      (httpsPort
        ? `frontend fe_tls\n  bind 127.0.0.1:${httpsPort} ssl crt ${pem} alpn h2,http/1.1 no-tls-tickets\n  option forwardfor\n  default_backend be\n`
        : '') +
      `backend be\n  balance roundrobin\n` +
      ports.map((p, i) => `  server m${i} 127.0.0.1:${p}\n`).join(''),
  );
  const proc = start(binary, ['-db', '-f', file], dir);
  await ready(port, name, proc);
  return { target: { name, port, pid: proc.child.pid, peakOnly: threads !== 1 }, httpsPort };
}

async function startNginx(binary: string, ports: number[], dir: string): Promise<Target> {
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  await writeFile(
    file,
    `daemon off;\nmaster_process off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n` +
      `  upstream members {\n${ports.map((p) => `    server 127.0.0.1:${p};\n`).join('')}    keepalive 64;\n  }\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    location / {\n      proxy_pass http://members;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }\n  }\n}\n`,
  );
  const proc = start(binary, ['-c', file, '-p', dir], dir);
  await ready(port, 'nginx', proc);
  return { name: 'nginx', port, pid: proc.child.pid };
}

/** Milliseconds from wrk's "1.23ms" / "456.00us" / "1.20s". */
function wrkMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) return NaN;
  const n = Number(match[1]);
  return match[2] === 'us' ? n / 1000 : match[2] === 's' ? n * 1000 : n;
}

/**
 * What a run asks of a target: as much as 50 connections can carry; RATE req/s spread over time (bench/fixed-rate.lua); or RATE
 * req/s as bursts of RATE_CONNECTIONS requests at once.
 */
type Load = 'peak' | 'rate' | 'burst';

/** Connections of the rate and burst runs: enough that requests go out on schedule while others wait. */
const RATE_CONNECTIONS = 20;
const LOAD_SCRIPTS = { rate: 'fixed-rate.lua', burst: 'burst.lua' };
/** The burst run's pause: wrk waits whole milliseconds, so the rate it gives is RATE_CONNECTIONS × 1000 / this. */
const BURST_DELAY_MS = Math.max(1, Math.round((RATE_CONNECTIONS * 1000) / RATE));

/** wrk against `url` (http or https) for `seconds`; `extra` adds options (a header) to a peak run. */
function runWrk(binary: string, url: string, load: Load, seconds = SECONDS, extra: string[] = []): Promise<Sample> {
  const args =
    load === 'peak'
      ? ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...extra, url]
      : [
          '-t1',
          `-c${RATE_CONNECTIONS}`,
          `-d${seconds}s`,
          '--latency',
          '-s',
          join(here, '..', '..', 'bench', LOAD_SCRIPTS[load]),
          url,
        ];
  const env = { ...process.env, BENCH_RATE: String(RATE), BENCH_DELAY_MS: String(BURST_DELAY_MS) };
  return new Promise((resolve, reject) => {
    execFile(binary, args, { env, signal: wrkAbort.signal }, (error, stdout) => {
      if (error) return reject(error);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
      const p50 = wrkMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
      const p99 = wrkMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const errors = non2xx + (socket ? socket.slice(1).reduce((n, v) => n + Number(v), 0) : 0);
      resolve({ rps, p50, p99, errors, requests: Number(/(\d+) requests in /.exec(stdout)?.[1] ?? 0) });
    });
  });
}

async function runAutocannon(port: number, rate?: number): Promise<Sample> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections: rate ? 20 : CONNECTIONS,
    duration: SECONDS,
    ...(rate ? { overallRate: rate } : {}),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    requests: result.requests.total,
  };
}

/** Runs `load` against `target` and adds the target's CPU time per request to the sample. */
async function measured<T extends { requests: number }>(
  target: { pid?: number | number[] },
  load: () => Promise<T>,
): Promise<T & { cpuUs?: number }> {
  const run = withCpu(target.pid, load);
  wrkRun = run;
  const { result, cpuUs } = await run;
  return cpuUs === undefined || result.requests === 0 ? result : { ...result, cpuUs: cpuUs / result.requests };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of the defined values, or undefined when there are none. */
function medianOf(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length ? median(known) : undefined;
}

function summarise(samples: Sample[]): Sample {
  return {
    rps: median(samples.map((s) => s.rps)),
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    errors: samples.reduce((n, s) => n + s.errors, 0),
    requests: samples.reduce((n, s) => n + s.requests, 0),
    cpuUs: medianOf(samples.map((s) => s.cpuUs)),
  };
}

const cpuCell = (cpuUs: number | undefined) => (cpuUs === undefined ? '-' : cpuUs.toFixed(1)).padStart(12);
/** "CPU 1.80× haproxy" when both CPU figures are known. */
const cpuRatio = (cpuUs: number | undefined, base: number | undefined) =>
  cpuUs !== undefined && base ? `CPU ${(cpuUs / base).toFixed(2)}× haproxy` : '';

function table(title: string, rows: [string, Sample][], extra: (name: string, s: Sample) => string): void {
  console.log(`\n${title}`);
  console.log(
    `${'target'.padEnd(12)}${'req/s'.padStart(10)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}${'errors'.padStart(8)}${'CPU µs/req'.padStart(12)}  notes`,
  );
  for (const [name, s] of rows) {
    console.log(
      `${name.padEnd(12)}${s.rps.toFixed(0).padStart(10)}${s.p50.toFixed(2).padStart(10)}${s.p99.toFixed(2).padStart(10)}${String(s.errors).padStart(8)}${cpuCell(s.cpuUs)}  ${extra(name, s)}`.trimEnd(),
    );
  }
}

/** Peak, fixed rate and bursts over plain HTTP, in interleaved rounds, then their tables. */
async function runHttp(wrk: string | undefined, targets: Target[]): Promise<void> {
  const loads: Load[] = wrk ? ['peak', 'rate', 'burst'] : ['peak', 'rate'];
  const samples = new Map<Load, Map<string, Sample[]>>(loads.map((load) => [load, new Map()]));
  // Warm-up: JIT and connection pools, not measured.
  for (const t of targets) await runAutocannon(t.port, 1000).catch(() => undefined);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const load of loads) {
      for (const t of targets) {
        if (t.peakOnly && load !== 'peak') continue;
        const s = await measured(t, () =>
          wrk
            ? runWrk(wrk, `http://127.0.0.1:${t.port}/`, load)
            : runAutocannon(t.port, load === 'peak' ? undefined : RATE),
        );
        const byTarget = samples.get(load)!;
        (byTarget.get(t.name) ?? byTarget.set(t.name, []).get(t.name)!).push(s);
        const cpu = s.cpuUs === undefined ? '' : `  CPU ${s.cpuUs.toFixed(1)} µs/req`;
        log(
          `[round ${round}/${ROUNDS}] ${load.padEnd(5)} ${t.name.padEnd(11)} ${s.rps.toFixed(0)} req/s  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  errors ${s.errors}${cpu}`,
        );
      }
    }
  }
  const medians = (load: Load) =>
    targets
      .filter((t) => load === 'peak' || !t.peakOnly)
      .map((t) => [t.name, summarise(samples.get(load)!.get(t.name)!)] as [string, Sample]);
  const byName = (rows: [string, Sample][], name: string) => rows.find(([n]) => n === name)?.[1];
  const peaks = medians('peak');
  const hpPeak = byName(peaks, 'http-proxy');
  const directPeak = byName(peaks, 'direct')!;
  const haPeak = byName(peaks, 'haproxy');
  table(`Peak throughput, ${CONNECTIONS} connections (median of ${ROUNDS})`, peaks, (name, s) =>
    name === 'direct'
      ? ''
      : [
          hpPeak ? `${(s.rps / hpPeak.rps).toFixed(2)}× http-proxy` : '',
          `${((100 * s.rps) / directPeak.rps).toFixed(0)}% of direct`,
          name === 'haproxy' ? '' : cpuRatio(s.cpuUs, haPeak?.cpuUs),
        ]
          .filter(Boolean)
          .join(', '),
  );
  const latencyTable = (title: string, rows: [string, Sample][]) => {
    const direct = byName(rows, 'direct')!;
    const ha = byName(rows, 'haproxy');
    table(title, rows, (name, s) => {
      if (name === 'direct') return '';
      const added = `adds p99 ${(s.p99 - direct.p99).toFixed(2)} ms over direct`;
      return ha && name !== 'haproxy' ? `${added}, ${(s.p99 - ha.p99).toFixed(2)} ms over haproxy` : added;
    });
  };
  latencyTable(`Fixed rate ${RATE} req/s, spread on 1 ms ticks (median of ${ROUNDS})`, medians('rate'));
  if (wrk)
    latencyTable(
      `Bursts: ${RATE_CONNECTIONS} requests at once every ${BURST_DELAY_MS} ms (median of ${ROUNDS})`,
      medians('burst'),
    );
}

/** Requests in flight on each HTTP/2 connection of the h2load row (CONNECTIONS in flight in all). */
const H2_STREAMS = 10;

/** A proxy's HTTPS listener. */
interface HttpsTarget {
  name: 'dayshift' | 'haproxy';
  port: number;
  pid?: number | number[];
}

/** One row of the HTTPS table: a load, and why a target has no figure in it (when it has none). */
interface HttpsLoad {
  label: string;
  run: (port: number) => Promise<H2Count>;
  missing: Partial<Record<HttpsTarget['name'], string>>;
}

/** Keep-alive, a new connection per request and HTTP/2, Dayshift against HAProxy, in interleaved rounds. */
async function runHttps(wrk: string | undefined, targets: HttpsTarget[]): Promise<void> {
  const h2load = findExecutable('h2load');
  const h2Connections = Math.max(1, Math.round(CONNECTIONS / H2_STREAMS));
  const loads: HttpsLoad[] = [];
  if (wrk) {
    loads.push({
      label: `keep-alive, ${CONNECTIONS} connections`,
      run: (port) => runWrk(wrk, `https://127.0.0.1:${port}/`, 'peak', TLS_SECONDS),
      missing: {},
    });
    // A full handshake per request: the servers resume no session (bench/https.ts says why), checked here.
    const fresh: HttpsLoad = {
      label: `new connection per request, ${CONNECTIONS} at once`,
      run: (port) => runWrk(wrk, `https://127.0.0.1:${port}/`, 'peak', TLS_SECONDS, ['-H', 'Connection: close']),
      missing: {},
    };
    for (const t of targets)
      if (await sessionResumed(t.port)) fresh.missing[t.name] = 'resumed a TLS session: no full-handshake figure';
    loads.push(fresh);
  } else log('https: wrk not installed (Debian package wrk): no keep-alive and new-connection rows');
  if (h2load) {
    loads.push({
      label: `HTTP/2 (h2load), ${h2Connections} conn × ${H2_STREAMS} streams`,
      run: (port) => runH2load(h2load, port, TLS_SECONDS, h2Connections, H2_STREAMS, wrkAbort.signal),
      missing: {},
    });
  } else log('https: h2load not installed (Debian package nghttp2-client): no HTTP/2 row');
  log(`https: ${targets.map((t) => t.name).join(' and ')}, ${TLS_SECONDS}s per run`);
  // Warm-up: Dayshift's TLS path through the JIT, not measured.
  if (wrk) for (const t of targets) await runWrk(wrk, `https://127.0.0.1:${t.port}/`, 'peak', 1).catch(() => undefined);
  const samples = new Map<string, (H2Count & { cpuUs?: number })[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const load of loads) {
      for (const t of targets) {
        if (load.missing[t.name]) continue;
        const s = await measured(t, () => load.run(t.port));
        const key = `${load.label}\n${t.name}`;
        (samples.get(key) ?? samples.set(key, []).get(key)!).push(s);
        const cpu = s.cpuUs === undefined ? '' : `  CPU ${s.cpuUs.toFixed(1)} µs/req`;
        log(
          `[round ${round}/${ROUNDS}] https ${load.label}: ${t.name} ${s.rps.toFixed(0)} req/s  errors ${s.errors}${cpu}`,
        );
      }
    }
  }
  const width = Math.max(...loads.map((l) => l.label.length)) + 2;
  const against = targets.some((t) => t.name === 'haproxy') ? ' against HAProxy (1 thread, alpn h2,http/1.1)' : '';
  console.log(`\nHTTPS: Dayshift${against}, median of ${ROUNDS} runs of ${TLS_SECONDS} s`);
  console.log(
    `${'load'.padEnd(width)}${'target'.padEnd(10)}${'req/s'.padStart(10)}${'CPU µs/req'.padStart(12)}${'errors'.padStart(8)}  notes`,
  );
  for (const load of loads) {
    const figures = (name: string) => {
      const runs = samples.get(`${load.label}\n${name}`);
      return (
        runs && {
          rps: median(runs.map((s) => s.rps)),
          cpuUs: medianOf(runs.map((s) => s.cpuUs)),
          errors: runs.reduce((n, s) => n + s.errors, 0),
        }
      );
    };
    const ha = figures('haproxy');
    targets.forEach((t, i) => {
      const label = (i === 0 ? load.label : '').padEnd(width) + t.name.padEnd(10);
      const s = figures(t.name);
      if (!s) return console.log(`${label}${load.missing[t.name] ?? ''}`);
      const notes = [
        t.name !== 'haproxy' && ha ? `${(s.rps / ha.rps).toFixed(2)}× haproxy` : '',
        t.name !== 'haproxy' ? cpuRatio(s.cpuUs, ha?.cpuUs) : '',
      ];
      console.log(
        `${label}${s.rps.toFixed(0).padStart(10)}${cpuCell(s.cpuUs)}${String(s.errors).padStart(8)}  ${notes.filter(Boolean).join(', ')}`.trimEnd(),
      );
    });
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dayshift-bench-'));
  const forget = onInterrupt(async () => {
    wrkAbort.abort();
    await Promise.allSettled([wrkRun, stopAll()]);
    await rm(dir, { recursive: true, force: true });
  });
  const wrk = findExecutable('wrk');
  const haproxy = findExecutable('haproxy');
  const nginx = findExecutable('nginx');
  log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; load: ${wrk ? 'wrk (bench/fixed-rate.lua, bench/burst.lua)' : 'autocannon (no burst runs without wrk)'}`,
  );
  log(
    `rounds ${ROUNDS}, ${SECONDS}s per run, ${CONNECTIONS} connections, fixed rate ${RATE} req/s, ${MEMBERS} members`,
  );
  try {
    const members = await spawnNode<{ ports: number[] }>('members.js', [String(MEMBERS)], dir);
    const ports = members.info.ports;
    // One self-signed certificate for both HTTPS listeners; HAProxy wants it with its key in one file.
    const cert = TLS ? selfSigned(dir, 'bench', 'bench.test') : undefined;
    const pem = cert && join(dir, 'bench.pem');
    if (cert && pem) await writeFile(pem, Buffer.concat([await readFile(cert.cert), await readFile(cert.key)]));
    const targets: Target[] = [{ name: 'direct', port: ports[0]! }];
    const dayshift = await spawnNode<{ port: number; httpsPort?: number }>(
      'dayshift-server.js',
      [ports.join(','), 'round-robin', 'dayshift', ...(cert ? [cert.cert, cert.key] : [])],
      dir,
      cert ? [await resumptionOff(dir)] : [],
    );
    targets.push({ name: 'dayshift', port: dayshift.info.port, pid: dayshift.proc.child.pid });
    // Dayshift with its proxy in worker processes (issue 16), 1 and 2 of them, peak only like haproxy-2t:
    // CPU per request adds up the main process's and the workers' time. `dayshift` above is workers: 1,
    // the default (no main/worker split); ds-workers-1 shows what the split itself costs.
    for (const workers of WORKER_COUNTS) {
      const pool = await spawnNode<{ port: number; pids: number[] }>(
        'dayshift-workers-server.js',
        [ports.join(','), String(workers)],
        dir,
      );
      targets.push({ name: `ds-workers-${workers}`, port: pool.info.port, pid: pool.info.pids, peakOnly: true });
    }
    if (HTTP) {
      const proxies: [string, string[]][] = [];
      if (ENGINES) {
        proxies.push(['ds-undici', ['dayshift-server.js', ports.join(','), 'round-robin', 'undici']]);
        proxies.push(['ds-nodehttp', ['dayshift-server.js', ports.join(','), 'round-robin', 'node-http']]);
      }
      proxies.push(['http-proxy', ['http-proxy-server.js', ports.join(',')]]);
      for (const [name, [script, ...args]] of proxies) {
        const proxy = await spawnNode<{ port: number }>(script!, args, dir);
        targets.push({ name, port: proxy.info.port, pid: proxy.proc.child.pid });
      }
    }
    const https: HttpsTarget[] = dayshift.info.httpsPort
      ? [{ name: 'dayshift', port: dayshift.info.httpsPort, pid: dayshift.proc.child.pid }]
      : [];
    if (haproxy) {
      for (const threads of HTTP ? HAPROXY_THREADS : HAPROXY_THREADS.slice(0, 1)) {
        const started = await startHaproxy(haproxy, ports, dir, threads, threads === 1 ? pem : undefined);
        targets.push(started.target);
        if (started.httpsPort) https.push({ name: 'haproxy', port: started.httpsPort, pid: started.target.pid });
      }
    } else log('haproxy not installed (Debian package haproxy): skipped');
    if (HTTP && nginx) targets.push(await startNginx(nginx, ports, dir));
    else if (HTTP) log('nginx not installed (Debian package nginx-light): skipped');
    for (const t of targets) await ready(t.port, t.name);

    if (HTTP) await runHttp(wrk, targets);
    if (TLS) await runHttps(wrk, https);
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    forget();
  }
}

handleInterrupts(log);
try {
  await main();
  // Then the release-shaped figures: the origin procedure under load, and AJP against HTTP to Tomcat.
  if (process.env.BENCH_SWAP !== '0') await runSwapBench(log);
  if (process.env.BENCH_AJP !== '0') await runAjpBench({ seconds: SECONDS, rounds: 1 });
} finally {
  // An interrupted run fails wherever it was: it ends with the interruption's exit code, not that error.
  await interrupted();
}
