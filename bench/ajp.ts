// AJP benchmark: the AJP transport against plain HTTP to the same Tomcat, and (when Apache httpd is
// installed) httpd's mod_proxy_ajp against a minimal Node front end over the AJP transport.
// Bounded in time and count. Usage: node dist/bench/ajp.js [--seconds 2] [--rounds 3] [--concurrency 8],
// or runAjpBench() from a bench runner.
// Scenarios run in alternating rounds and the median is printed: the machine is shared, and a slow
// minute must not land on one scenario only.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { createAjpTransport, type AjpTransport } from '../src/proxy/ajp/transport.js';
import { startHttpd } from '../test/support/httpd.js';
import { findExecutable } from '../test/support/peers.js';
import { startTomcat, type Tomcat } from '../test/support/tomcat.js';
import { handleInterrupts, interrupted, onInterrupt } from './interrupt.js';

export interface AjpBenchOptions {
  /** Seconds per measured run (default 2). */
  seconds?: number;
  /** Alternating rounds over all scenarios; the median is printed (default 3). */
  rounds?: number;
  /** Requests in flight (default 8). */
  concurrency?: number;
}

const settings = { seconds: 2, rounds: 3, concurrency: 8 };
/** A cap on requests per run, whatever the duration. */
const MAX_REQUESTS = 500_000;
const PATHS = ['/index.html', '/big.jsp?size=65536'];

interface Result {
  requests: number;
  errors: number;
  rps: number;
}

/** Runs `one` from settings.concurrency workers for settings.seconds (after 1 s of warm-up when `warm`). */
async function measure(one: () => Promise<void>, warm: boolean): Promise<Result> {
  const run = async (ms: number): Promise<{ requests: number; errors: number }> => {
    const end = Date.now() + ms;
    let requests = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: settings.concurrency }, async () => {
        while (Date.now() < end && requests + errors < MAX_REQUESTS) {
          try {
            await one();
            requests++;
          } catch {
            errors++;
          }
        }
      }),
    );
    return { requests, errors };
  };
  if (warm) await run(1000);
  const started = Date.now();
  const { requests, errors } = await run(settings.seconds * 1000);
  return { requests, errors, rps: requests / ((Date.now() - started) / 1000) };
}

function httpClient(port: number): { pool: Pool; get: (path: string) => Promise<void> } {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: settings.concurrency });
  return {
    pool,
    get: async (path) => {
      const res = await pool.request({ path, method: 'GET', headers: { host: 'bench.test' } });
      await res.body.dump({ limit: Infinity });
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    },
  };
}

function ajpGet(transport: AjpTransport, path: string): Promise<void> {
  return transport
    .request({
      method: 'GET',
      path,
      headers: [['host', 'bench.test']],
      body: null,
      client: { address: '127.0.0.1', port: 50000, secure: false, serverName: 'bench.test', serverPort: 80 },
      signal: new AbortController().signal,
    })
    .then(async (res) => {
      for await (const chunk of res.body) void chunk;
      if (res.status !== 200) throw new Error(`status ${res.status}`);
    });
}

/** The smallest HTTP front end over the AJP transport: what the Dayshift proxy does, minus routing. */
async function serveFront(ajpPort: number, secret: string, concurrency: number): Promise<void> {
  const transport = createAjpTransport(new URL(`ajp://127.0.0.1:${ajpPort}`), { secret, maxConnections: concurrency });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      headers.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
    const aborter = new AbortController();
    res.on('close', () => aborter.abort());
    transport
      .request({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers,
        body: null,
        client: {
          address: req.socket.remoteAddress ?? '',
          port: req.socket.remotePort ?? 0,
          secure: false,
          serverName: 'bench.test',
          serverPort: 80,
        },
        signal: aborter.signal,
      })
      .then(async (up) => {
        res.writeHead(up.status, up.statusMessage, up.headers.flat());
        await pipeline(up.body, res);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
  // The parent ends this process by PID; closing stdin is the signal if the parent dies first.
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0));
}

async function startFront(tomcat: Tomcat): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      '--front',
      String(tomcat.ajpPort),
      '--secret',
      tomcat.secret,
      '--concurrency',
      String(settings.concurrency),
    ],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', () => reject(new Error('the Node front end exited')));
  });
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** httpd with mod_proxy_ajp in front of the Tomcat (the shared test harness's httpd), when installed. */
async function startAjpHttpd(tomcat: Tomcat): Promise<{ port: number; stop: () => Promise<void> } | undefined> {
  const binary = findExecutable('apache2');
  if (!binary) return undefined;
  const httpd = await startHttpd(binary, {
    body: `ProxyPass / ajp://127.0.0.1:${tomcat.ajpPort}/ secret=${tomcat.secret}\nProxyPreserveHost On`,
    modules: ['proxy_ajp'],
  });
  return { port: httpd.port, stop: () => httpd.stop() };
}

function line(name: string, result: Result, baseline?: { name: string; result: Result }): string {
  const ratio = baseline ? `  ${(result.rps / baseline.result.rps).toFixed(2)}x ${baseline.name}` : '';
  const errors = result.errors ? `  (${result.errors} errors)` : '';
  return `  ${name.padEnd(40)} ${result.rps.toFixed(0).padStart(7)} req/s${ratio}${errors}`;
}

interface Scenario {
  name: string;
  run: (path: string) => Promise<void>;
  /** The scenario this one's ratio is against. */
  against?: string;
}

/** Runs the whole comparison and prints it; starts and stops its own Tomcat (and httpd). */
export async function runAjpBench(options: AjpBenchOptions = {}): Promise<void> {
  Object.assign(settings, options);
  if (!findExecutable('catalina.sh', ['/usr/share/tomcat10/bin'])) {
    console.error('bench/ajp: Tomcat not installed (apt-get install tomcat10 openjdk-17-jre-headless); skipped');
    return;
  }
  const tomcat = await startTomcat({ jvmRoute: 'bench' });
  // What an interruption stops (the Node front end also ends by itself when this process goes).
  const started: (() => Promise<void>)[] = [() => tomcat.stop()];
  const forget = onInterrupt(() => Promise.all(started.map((stop) => stop())));
  const ajpUrl = new URL(`ajp://127.0.0.1:${tomcat.ajpPort}`);
  const direct = httpClient(tomcat.httpPort);
  const ajpEveryReuse = createAjpTransport(ajpUrl, {
    secret: tomcat.secret,
    maxConnections: settings.concurrency,
    cpingAfterIdleMs: 0,
  });
  const ajp = createAjpTransport(ajpUrl, { secret: tomcat.secret, maxConnections: settings.concurrency });
  const front = await startFront(tomcat);
  started.push(front.stop);
  const viaNode = httpClient(front.port);
  const httpd = await startAjpHttpd(tomcat).catch((err: Error) => {
    console.error(`bench/ajp: httpd not used: ${err.message}`);
    return undefined;
  });
  if (httpd) started.push(httpd.stop);
  const viaHttpd = httpd ? httpClient(httpd.port) : undefined;
  const scenarios: Scenario[] = [
    { name: 'HTTP/1.1 direct (undici)', run: direct.get },
    {
      name: 'AJP transport (CPing after 1 s idle)',
      run: (path) => ajpGet(ajp, path),
      against: 'HTTP/1.1 direct (undici)',
    },
    {
      name: 'AJP transport, CPing before every reuse',
      run: (path) => ajpGet(ajpEveryReuse, path),
      against: 'HTTP/1.1 direct (undici)',
    },
  ];
  if (viaHttpd) scenarios.push({ name: 'HTTP -> httpd mod_proxy_ajp -> Tomcat', run: viaHttpd.get });
  scenarios.push({
    name: 'HTTP -> Node + AJP transport -> Tomcat',
    run: viaNode.get,
    against: viaHttpd ? 'HTTP -> httpd mod_proxy_ajp -> Tomcat' : 'HTTP/1.1 direct (undici)',
  });
  try {
    console.log(
      `AJP vs HTTP to one Tomcat 10: ${settings.concurrency} concurrent, median of ${settings.rounds} alternating runs of ${settings.seconds} s`,
    );
    for (const path of PATHS) {
      console.log(`\nGET ${path}`);
      const results = new Map<string, Result[]>(scenarios.map((s) => [s.name, []]));
      for (let round = 0; round < settings.rounds; round++) {
        for (const scenario of scenarios)
          results.get(scenario.name)!.push(await measure(() => scenario.run(path), round === 0));
      }
      const median = (name: string): Result => {
        const sorted = [...results.get(name)!].sort((a, b) => a.rps - b.rps);
        return sorted[Math.floor(sorted.length / 2)]!;
      };
      for (const scenario of scenarios)
        console.log(
          line(
            scenario.name,
            median(scenario.name),
            scenario.against ? { name: `vs ${scenario.against}`, result: median(scenario.against) } : undefined,
          ),
        );
    }
  } finally {
    await Promise.all([direct.pool.close(), viaNode.pool.close(), viaHttpd?.pool.close()]);
    await Promise.all([ajp.close(), ajpEveryReuse.close()]);
    await front.stop();
    await httpd?.stop();
    await tomcat.stop();
    forget();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '8' },
      // Internal: run only the Node front end (a child process, so it does not share the client's CPU).
      front: { type: 'string' },
      secret: { type: 'string' },
    },
  });
  const concurrency = Number(values.concurrency);
  if (values.front) await serveFront(Number(values.front), values.secret ?? '', concurrency);
  else {
    handleInterrupts((text) => console.error(text));
    try {
      await runAjpBench({ seconds: Number(values.seconds), rounds: Number(values.rounds), concurrency });
    } finally {
      await interrupted();
    }
  }
}
