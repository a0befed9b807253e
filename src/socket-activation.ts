// Inherited listening sockets: handed down as fds 3..3+LISTEN_FDS-1, named by the socket units'
// FileDescriptorName= in LISTEN_FDNAMES. systemd holds them across restarts, so while no Dayshift runs
// the kernel queues connections instead of refusing them. A Dayshift process hands its own sockets down
// the same way (handDown: to the next generation at an upgrade, to its workers), in DAYSHIFT_LISTEN_FDS
// and DAYSHIFT_LISTEN_FDNAMES: no PID to check, since it sets them only for a child it starts itself.
//
// Each inherited socket serves the configured listener with the same name (http, https, admin, writer)
// and the same port; the socket unit decides the address it is bound to. A configured listener that no
// inherited socket serves is bound as usual. An inherited socket that serves no configured listener is
// refused: starting would leave a port held by systemd that nothing answers.
import { once } from 'node:events';
import { readFileSync, readlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { endianness } from 'node:os';
import type { DayshiftConfig } from './config/schema.js';
import { DayshiftError, messageOf } from './errors.js';

/** The names a socket unit gives its sockets (FileDescriptorName=), one per kind of listener. */
export type ListenerName = 'http' | 'https' | 'admin' | 'writer';

export interface ListenAddress {
  host: string;
  port: number;
}

/** An inherited socket that cannot be used as it is: exit 2, nothing was started. */
export class SocketActivationError extends DayshiftError {
  readonly code = 'DAYSHIFT_SOCKET_ACTIVATION';
}

interface Inherited {
  fd: number;
  name: string;
  local: ListenAddress;
}

export interface WantedListener {
  name: ListenerName;
  address: ListenAddress;
}

/** The listeners `dayshift start` opens: the proxy's (built-in driver only) and the admin API's. */
export function configuredListeners(config: DayshiftConfig): WantedListener[] {
  const proxied = (config.driver?.type ?? 'builtin') === 'builtin';
  const of = (name: 'http' | 'https') =>
    proxied ? [config.listen[name] ?? []].flat().map((address) => ({ name, address })) : [];
  return [...of('http'), ...of('https'), { name: 'admin', address: config.admin.listen }];
}

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;

/** Where each configured listener's inherited fd is, by `name host:port`; empty when nothing was inherited. */
const adopted = new Map<string, number>();
const keyOf = (name: ListenerName, address: ListenAddress) => `${name} ${address.host}:${address.port}`;

/**
 * Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, unsets them (as sd_listen_fds(1) does, so hooks and
 * other children do not take the sockets for theirs) and matches each inherited socket to one of
 * `wanted`. Throws SocketActivationError before anything listens if a socket serves none.
 */
export function adoptInheritedSockets(wanted: WantedListener[], env: NodeJS.ProcessEnv = process.env): number {
  const fromDayshift = env[HANDED_FDS] !== undefined;
  const { LISTEN_PID: pid, LISTEN_FDS: systemdCount, LISTEN_FDNAMES: systemdNames } = env;
  const count = fromDayshift ? env[HANDED_FDS] : systemdCount;
  const names = fromDayshift ? env[HANDED_NAMES] : systemdNames;
  for (const key of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', HANDED_FDS, HANDED_NAMES]) delete env[key];
  if (count === undefined || (!fromDayshift && pid !== String(process.pid))) return 0;
  const n = Number(count);
  if (!Number.isInteger(n) || n < 0) throw new SocketActivationError(`LISTEN_FDS=${count} is not a count of sockets`);
  const nameList = names?.split(':') ?? [];
  if (n > 0 && nameList.length !== n) {
    throw new SocketActivationError(
      `${n} inherited socket(s) but LISTEN_FDNAMES names ${nameList.length}: give each socket unit FileDescriptorName= (one of http, https, admin, writer)`,
    );
  }
  const inherited: Inherited[] = [];
  const tcp = listeningTcpSockets();
  for (let i = 0; i < n; i++) {
    const fd = FIRST_FD + i;
    const name = nameList[i]!;
    const local = tcp.get(socketInode(fd));
    if (!local)
      throw new SocketActivationError(
        `inherited fd ${fd} (${name}) is not a listening TCP socket: use ListenStream= with an address and a port`,
      );
    inherited.push({ fd, name, local });
  }
  // Same name and port. Sockets on the configured host are matched first, so that with several
  // addresses on one port (127.0.0.1:80 and 192.0.2.1:80) each socket gets its own.
  const free = (socket: Inherited) =>
    wanted.filter(
      (w) => w.name === socket.name && w.address.port === socket.local.port && !adopted.has(keyOf(w.name, w.address)),
    );
  const rest: Inherited[] = [];
  for (const socket of inherited) {
    const exact = free(socket).find((w) => w.address.host === socket.local.host);
    if (exact) adopted.set(keyOf(exact.name, exact.address), socket.fd);
    else rest.push(socket);
  }
  const unmatched: string[] = [];
  for (const socket of rest) {
    const [match] = free(socket);
    if (match) adopted.set(keyOf(match.name, match.address), socket.fd);
    else unmatched.push(`fd ${socket.fd} named "${socket.name}" on ${socket.local.host}:${socket.local.port}`);
  }
  if (unmatched.length > 0) {
    adopted.clear();
    const listeners = wanted.map((w) => `${w.name} ${w.address.host}:${w.address.port}`).join(', ') || 'none';
    throw new SocketActivationError(
      `inherited socket(s) that serve no configured listener: ${unmatched.join('; ')}. Configured: ${listeners}. ` +
        'Make the socket units (FileDescriptorName=, ListenStream= port) and the config agree.',
    );
  }
  return inherited.length;
}

/** The environment names a Dayshift parent hands its sockets down in (systemd's, without LISTEN_PID). */
const HANDED_FDS = 'DAYSHIFT_LISTEN_FDS';
const HANDED_NAMES = 'DAYSHIFT_LISTEN_FDNAMES';

/** A listening socket to hand to a child process, by the name of the listener it serves. */
export interface HandedSocket {
  name: ListenerName;
  fd: number;
}

/**
 * What to give child_process.spawn so that the child adopts these sockets with adoptInheritedSockets:
 * the fds for stdio positions 3.. (after stdin, stdout, stderr) and the environment that names them.
 */
export function handDown(sockets: HandedSocket[]): { fds: number[]; env: Record<string, string> } {
  return {
    fds: sockets.map((s) => s.fd),
    env: { [HANDED_FDS]: String(sockets.length), [HANDED_NAMES]: sockets.map((s) => s.name).join(':') },
  };
}

/**
 * The fd of a listening server's socket, to hand down. Node has no public accessor; `_handle.fd` is the
 * libuv handle's fd on Unix (what the cluster module shares too).
 */
export function listeningFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the server is not listening on a socket of its own');
  return fd;
}

/**
 * A worker's sockets, at fds 3.. in this order: its main process bound them and knows which listener
 * each serves, so there is nothing to match (and nothing to check in /proc: a socket no worker has
 * listened on yet is bound but not listening).
 */
export function adoptWorkerSockets(listeners: WantedListener[]): void {
  listeners.forEach(({ name, address }, i) => adopted.set(keyOf(name, address), FIRST_FD + i));
}

/**
 * The inherited socket adopted for this listener, taken (a second call returns undefined): listenOn's,
 * or the main process's, which holds it for its workers (src/workers/listen-sockets.ts).
 */
export function takeAdopted(name: ListenerName, address: ListenAddress): number | undefined {
  const fd = adopted.get(keyOf(name, address));
  adopted.delete(keyOf(name, address));
  return fd;
}

/** Listens on the inherited socket adopted for this listener, or binds `address`. */
export async function listenOn(server: Server, address: ListenAddress, name: ListenerName): Promise<void> {
  const fd = takeAdopted(name, address);
  if (fd !== undefined) {
    server.listen({ fd });
  } else {
    server.listen(address.port, address.host);
  }
  try {
    await once(server, 'listening');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where =
      fd !== undefined ? `inherited fd ${fd} (${address.host}:${address.port})` : `${address.host}:${address.port}`;
    throw new Error(`cannot listen on ${where}: ${code === 'EADDRINUSE' ? 'address in use' : messageOf(error)}`, {
      cause: error,
    });
  }
}

/** The inode of the socket behind `fd` (Linux: /proc/self/fd/N → "socket:[inode]"). */
function socketInode(fd: number): string {
  try {
    return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? '';
  } catch {
    return '';
  }
}

/** Listening TCP sockets of this network namespace by inode, with their local address. */
function listeningTcpSockets(): Map<string, ListenAddress> {
  const sockets = new Map<string, ListenAddress>();
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode; st 0A is LISTEN.
      if (fields.length < 10 || fields[3] !== '0A') continue;
      const [host, port] = fields[1]!.split(':');
      sockets.set(fields[9]!, { host: procHost(host!), port: parseInt(port!, 16) });
    }
  }
  return sockets;
}

/** /proc/net/tcp{,6} print addresses as 32-bit words in host byte order. */
function procHost(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((b) => parseInt(hex.slice(w + b, w + b + 2), 16));
    bytes.push(...(endianness() === 'LE' ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join('.');
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.slice(12).join('.');
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // The shortest form for the two addresses operators meet here; others print in full.
  const full = groups.join(':');
  return full === '0:0:0:0:0:0:0:0' ? '::' : full === '0:0:0:0:0:0:0:1' ? '::1' : full;
}
