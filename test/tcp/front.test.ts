import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { proxyHeader } from '../../src/proxy/proxy-protocol.js';
import { TcpFront } from '../../src/tcp/front.js';
import { waitFor } from '../support/proxy.js';

// Two TCP services that answer every chunk with their own name, so a client can tell where it landed.
async function namedService(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.on('data', (chunk) => socket.write(`${name}:${chunk.toString()}`)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

async function ask(port: number, text: string): Promise<{ socket: Socket; reply: string }> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.write(text);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return { socket, reply: chunk.toString() };
}

let one: { server: Server; port: number };
let two: { server: Server; port: number };
before(async () => {
  one = await namedService('one');
  two = await namedService('two');
});
after(() => {
  one.server.close();
  two.server.close();
});

test('forwards bytes both ways and counts connections and bytes', async () => {
  const front = new TcpFront({ listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: one.port } });
  const { port } = await front.start();
  try {
    const { socket, reply } = await ask(port, 'hello');
    assert.equal(reply, 'one:hello');
    assert.deepEqual(
      { ...front.stats(), target: undefined },
      { target: undefined, open: 1, total: 1, failed: 0, bytesIn: 5, bytesOut: 9 },
    );
    socket.end();
    await once(socket, 'close');
  } finally {
    await front.close();
  }
});

test('setTarget moves new connections only; closeConnectionsTo ends the old ones', async () => {
  const front = new TcpFront({ listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: one.port } });
  const { port } = await front.start();
  try {
    const old = await ask(port, 'a');
    assert.equal(old.reply, 'one:a');
    front.setTarget({ host: '127.0.0.1', port: two.port });
    const fresh = await ask(port, 'b');
    assert.equal(fresh.reply, 'two:b');
    old.socket.write('c');
    const [again] = (await once(old.socket, 'data')) as [Buffer];
    assert.equal(again.toString(), 'one:c', 'an open connection stays on its target until closed');
    const closed = once(old.socket, 'close');
    assert.equal(front.closeConnectionsTo({ host: '127.0.0.1', port: one.port }), 1);
    await closed;
    assert.equal(front.stats().open, 1);
    fresh.socket.write('d');
    const [still] = (await once(fresh.socket, 'data')) as [Buffer];
    assert.equal(still.toString(), 'two:d', 'connections to the new target are untouched');
    fresh.socket.destroy();
  } finally {
    await front.close();
  }
});

test('a target that refuses closes the client and counts a failure', async () => {
  const refused = createServer();
  refused.listen(0, '127.0.0.1');
  await once(refused, 'listening');
  const deadPort = (refused.address() as { port: number }).port;
  await new Promise<void>((resolve) => refused.close(() => resolve()));
  const front = new TcpFront({ listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: deadPort } });
  const { port } = await front.start();
  try {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await once(socket, 'close');
    assert.equal(front.stats().failed, 1);
    assert.equal(front.stats().open, 0);
  } finally {
    await front.close();
  }
});

for (const version of ['v1', 'v2'] as const) {
  test(`proxyProtocol ${version}: each target connection opens with a PROXY header naming the client`, async () => {
    let received = Buffer.alloc(0);
    const target = createServer((socket) =>
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk]))),
    );
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    const front = new TcpFront({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port: (target.address() as { port: number }).port },
      proxyProtocol: version,
    });
    const { port } = await front.start();
    try {
      const client = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      await once(client, 'connect');
      client.write('hello');
      const header = proxyHeader(
        version,
        { address: '127.0.0.2', port: client.localPort!, family: 'IPv4' },
        { address: '127.0.0.1', port, family: 'IPv4' },
      );
      await waitFor(() => received.length >= header.length + 5);
      assert.deepEqual(received, Buffer.concat([header, Buffer.from('hello')]));
      client.destroy();
    } finally {
      await front.close();
      target.close();
    }
  });
}

test('a client that sends and half-closes before the target answers still gets the whole answer', async () => {
  // Reads the request to its end, then answers and closes: what `nc -N` or an HTTP/1.0 client expects.
  const service = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).toString()}`));
  });
  service.listen(0, '127.0.0.1');
  await once(service, 'listening');
  const front = new TcpFront({
    listen: { host: '127.0.0.1', port: 0 },
    target: { host: '127.0.0.1', port: (service.address() as { port: number }).port },
  });
  const { port } = await front.start();
  try {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    // Written and half-closed at once: the front has not reached the target yet.
    socket.end('request');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'got request');
    socket.destroy();
    await waitFor(() => front.stats().open === 0, 5000, 'the splice to be gone once both sides closed');
  } finally {
    await front.close();
    service.close();
  }
});
