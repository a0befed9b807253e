// Benchmark members: small node:http servers answering a fixed 64-byte body, run in their own process
// so that they do not share an event loop with the proxy being measured. Prints the ports as JSON.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

const count = Number(process.argv[2] ?? 2);
const body = Buffer.alloc(64, 'x');
const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  ports.push((server.address() as AddressInfo).port);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
