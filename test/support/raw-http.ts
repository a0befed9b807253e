// Raw HTTP on a socket, for tests about framing: what a proxy answers to exact bytes.
import { once } from 'node:events';
import net from 'node:net';

/**
 * Writes raw bytes on a fresh connection (then FIN when `end`); resolves with everything the peer sent
 * before it closed the connection. A peer that keeps it open is cut after 5 s, and the test then fails
 * on the missing answer.
 */
export async function rawExchange(port: number, bytes: string, options: { end?: boolean } = {}): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  socket.setTimeout(5000, () => socket.destroy());
  if (options.end) socket.end(bytes);
  else socket.write(bytes);
  await once(socket, 'close');
  return text;
}

/** Status codes of the responses in a reply (one follows the previous body without a line break). */
export function statuses(reply: string): number[] {
  return [...reply.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}
