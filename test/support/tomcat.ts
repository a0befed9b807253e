// Real Tomcat 10 (Debian tomcat10) for tests: its own CATALINA_BASE in a mkdtemp directory, HTTP and AJP
// connectors on free loopback ports, a jvmRoute, an AJP secret, and the test webapp in tomcat-webapp/
// (echo.jsp, big.jsp). Started in the foreground (`catalina.sh run` execs java, so the child is the JVM),
// ready when the AJP connector answers CPing with CPong and the app answers HTTP 200; stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { findExecutable, requirePeer } from './peers.js';
import { freePort } from '../../src/ports.js';
import { messageOf } from '../../src/errors.js';

export const TOMCAT_HOME = '/usr/share/tomcat10';
const WEBAPP = fileURLToPath(new URL('../../../test/support/tomcat-webapp/', import.meta.url));
/** Tomcat's start is slow on a loaded 2-core machine (up to ~18 s seen); CI gets a generous deadline. */
const READY_DEADLINE_MS = 60_000;
/** FAST_START from the research notes: C1 only, serial GC, small heap — ready in about 2 s when quiet. */
const FAST_START_OPTS = '-Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.security.egd=file:/dev/./urandom';

export interface TomcatOptions {
  jvmRoute: string;
  /** AJP connector secret; a random one by default. */
  secret?: string;
  /** AJP connector packetSize (default 8192). */
  packetSize?: number;
}

export interface Tomcat {
  readonly httpPort: number;
  readonly ajpPort: number;
  readonly jvmRoute: string;
  readonly secret: string;
  readonly pid: number;
  /** Resolves when the JVM has exited (however it was stopped). */
  readonly exited: Promise<void>;
  /** SIGTERM, wait for exit (SIGKILL after 15 s), remove the CATALINA_BASE. */
  stop(): Promise<void>;
  /** SIGKILL now, as a crash would; resolves when the JVM is gone. */
  kill(): Promise<void>;
}

/** The Tomcat peer for `t`, or undefined when it is missing (the test is then skipped; fails in CI). */
export function requireTomcat(t: TestContext): boolean {
  return (
    requirePeer(t, 'java', 'openjdk-17-jre-headless') !== undefined &&
    requirePeer(t, 'catalina.sh', 'tomcat10', [join(TOMCAT_HOME, 'bin')]) !== undefined
  );
}

export async function startTomcat(options: TomcatOptions): Promise<Tomcat> {
  const catalina = findExecutable('catalina.sh', [join(TOMCAT_HOME, 'bin')]);
  if (!catalina) throw new Error('catalina.sh not found: install the Debian package tomcat10');
  const base = await mkdtemp(join(tmpdir(), 'dayshift-tomcat-'));
  const [httpPort, ajpPort] = [await freePort(), await freePort()];
  const secret = options.secret ?? randomBytes(12).toString('hex');
  await writeBase(base, {
    httpPort,
    ajpPort,
    secret,
    jvmRoute: options.jvmRoute,
    packetSize: options.packetSize ?? 8192,
  });

  const child = spawn(catalina, ['run'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      CATALINA_HOME: TOMCAT_HOME,
      CATALINA_BASE: base,
      CATALINA_TMPDIR: join(base, 'temp'),
      CATALINA_OPTS: FAST_START_OPTS,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  // If the test process dies without stopping it (a crash, an uncaught error), the JVM must not outlive it.
  const killOnExit = (): void => {
    if (!gone) child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  void exited.then(() => {
    gone = true;
    process.off('exit', killOnExit);
  });

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    if (!gone) child.kill(signal);
    if (signal === 'SIGTERM') {
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  };

  try {
    await waitReady(child, () => gone, httpPort, ajpPort);
  } catch (err) {
    await stopWith('SIGKILL');
    await rm(base, { recursive: true, force: true });
    throw new Error(
      `Tomcat (jvmRoute ${options.jvmRoute}) did not become ready: ${messageOf(err)}\n--- its output ---\n${log}`,
    );
  }
  return {
    httpPort,
    ajpPort,
    jvmRoute: options.jvmRoute,
    secret,
    pid: child.pid!,
    exited,
    stop: async () => {
      await stopWith('SIGTERM');
      await rm(base, { recursive: true, force: true });
    },
    kill: () => stopWith('SIGKILL'),
  };
}

async function writeBase(
  base: string,
  o: { httpPort: number; ajpPort: number; secret: string; jvmRoute: string; packetSize: number },
): Promise<void> {
  for (const dir of ['conf', 'logs', 'temp', 'work', 'webapps/ROOT']) await mkdir(join(base, dir), { recursive: true });
  for (const file of ['web.xml', 'catalina.properties', 'logging.properties']) {
    await copyFile(join(TOMCAT_HOME, 'etc', file), join(base, 'conf', file));
  }
  // Jar scanning is most of Tomcat's start time and the test app needs none of it.
  await writeFile(
    join(base, 'conf', 'context.xml'),
    '<Context>\n  <JarScanner scanClassPath="false" scanManifest="false"/>\n</Context>\n',
  );
  await writeFile(
    join(base, 'conf', 'server.xml'),
    `<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector address="127.0.0.1" port="${o.httpPort}" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Connector protocol="AJP/1.3" address="127.0.0.1" port="${o.ajpPort}" secretRequired="true" secret="${xmlAttr(o.secret)}"
               packetSize="${o.packetSize}" allowedRequestAttributesPattern="x-.*" maxThreads="50"/>
    <Engine name="Catalina" defaultHost="localhost" jvmRoute="${xmlAttr(o.jvmRoute)}">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
`,
  );
  await writeFile(join(base, 'webapps/ROOT/index.html'), '<!doctype html><title>ok</title>ok\n');
  for (const file of await readdir(WEBAPP)) await copyFile(join(WEBAPP, file), join(base, 'webapps/ROOT', file));
}

function xmlAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

async function waitReady(child: ChildProcess, gone: () => boolean, httpPort: number, ajpPort: number): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  let last = 'not probed yet';
  while (Date.now() < deadline) {
    if (gone()) throw new Error(`the JVM exited with ${child.exitCode ?? child.signalCode}`);
    try {
      // A bound AJP port is not readiness: a connector that failed to start keeps LISTEN but never answers.
      await cping(ajpPort, 2000);
      // Compiles echo.jsp too, so the first test does not pay for it.
      if ((await httpStatus(httpPort, '/echo.jsp')) === 200) return;
      last = 'echo.jsp not 200 yet';
    } catch (err) {
      last = messageOf(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`not ready within ${READY_DEADLINE_MS} ms (last probe: ${last})`);
}

/** One raw CPing (12 34 00 01 0A) and the CPong reply (41 42 00 01 09), independent of the code under test. */
export function cping(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error('no CPong')), timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.once('error', done);
    socket.on('connect', () => socket.write(Buffer.from([0x12, 0x34, 0x00, 0x01, 0x0a])));
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 5)
        done(
          got.subarray(0, 5).equals(Buffer.from([0x41, 0x42, 0x00, 0x01, 0x09])) ? undefined : new Error('not a CPong'),
        );
    });
  });
}

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('HTTP probe timed out')));
    req.on('error', reject);
    req.end();
  });
}
