// The `http-proxy` npm package as the benchmark's Node baseline: round-robin over the members with a
// keep-alive agent (its best configuration), in its own process.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';

const targets = (process.argv[2] ?? '').split(',').map((port) => `http://127.0.0.1:${port}`);
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
proxy.on('error', (_error, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
let next = 0;
const server = http.createServer((req, res) => {
  next = (next + 1) % targets.length;
  proxy.web(req, res, { target: targets[next] });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
