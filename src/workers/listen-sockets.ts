// The proxy's listening sockets as the main process holds them for its workers. The main binds each one
// (or takes it from systemd) and never listens or accepts on it: the workers listen on copies of the fd,
// so they share one accept queue. The socket stays bound and, once a worker has listened, listening
// for as long as the main holds it, so connections queue rather than being refused while a worker is
// replaced (and while the upgrade hands the sockets to the next generation).
import { lookup } from 'node:dns/promises';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { DayshiftConfig, ListenerConfig } from '../config/schema.js';
import { takeAdopted, type HandedSocket } from '../socket-activation.js';

/** A TCP handle as Node's net module makes it (internal: what server.listen() builds on). */
interface TcpHandle {
  fd: number;
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: 4 | 6) => TcpHandle | number;

export interface ListenSocket extends HandedSocket {
  name: 'http' | 'https';
  /** The configured listener, with the port bound (port 0 picks one when bound here). */
  listener: ListenerConfig;
  /** Bound here (closed at close()); else inherited from systemd, whose fd is closed the same way. */
  close(): void;
}

function addressList(value: DayshiftConfig['listen']['http']): ListenerConfig[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Binds (or takes from systemd) every http and https listener of the config, without listening. */
export async function bindListenSockets(config: DayshiftConfig): Promise<ListenSocket[]> {
  const sockets: ListenSocket[] = [];
  try {
    for (const name of ['http', 'https'] as const) {
      for (const listener of addressList(config.listen[name])) sockets.push(await bindOne(name, listener));
    }
  } catch (error) {
    for (const socket of sockets) socket.close();
    throw error;
  }
  return sockets;
}

async function bindOne(name: 'http' | 'https', listener: ListenerConfig): Promise<ListenSocket> {
  const inherited = takeAdopted(name, listener);
  if (inherited !== undefined) {
    return { name, fd: inherited, listener, close: () => closeSync(inherited) };
  }
  const where = `${listener.host}:${listener.port}`;
  const { address, family } = await lookup(listener.host).catch((error: Error) => {
    throw new Error(`cannot listen on ${where}: ${error.message}`, { cause: error });
  });
  const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
  const handle = create(address, listener.port, family === 6 ? 6 : 4);
  if (typeof handle === 'number') {
    const code = getSystemErrorName(handle);
    throw new Error(`cannot listen on ${where}: ${code === 'EADDRINUSE' ? 'address in use' : code}`);
  }
  const local: { port?: number } = {};
  handle.getsockname(local);
  return {
    name,
    fd: handle.fd,
    listener: { ...listener, port: local.port ?? listener.port },
    close: () => handle.close(),
  };
}
