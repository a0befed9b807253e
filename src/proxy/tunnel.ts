// Upgrade requests (WebSocket and others): the request head goes to the chosen member on a fresh
// connection, then bytes are piped both ways. Each tunnel is counted on its member so a drain can see
// and close them.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { PassivePolicy } from '../balance/member.js';
import { select } from '../balance/select.js';
import type { StickySigner } from '../balance/sticky.js';
import type { SessionObserver } from './api.js';
import { connectionNamed, upstreamHeaders } from './headers.js';
import { resolveTarget } from './forward.js';
import { inMaintenance, isPaused, listHas, memberPath, type Snapshot } from './snapshot.js';

const HALF_CLOSE_MS = 1000;

function refuse(socket: Duplex, status: number): void {
  const text = STATUS_CODES[status]!;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\nConnection: close\r\n\r\n${text}\n`);
}

export interface TunnelContext {
  snapshot(): Snapshot;
  signer: StickySigner;
  sessions: SessionObserver | undefined;
  logger: Logger;
  passive(): PassivePolicy;
}

export function handleUpgrade(ctx: TunnelContext, req: IncomingMessage, client: Duplex, head: Buffer): void {
  // node:http hands the socket over without its own error handler: a reset while we refuse or connect
  // must not become an uncaught 'error' event.
  client.on('error', () => client.destroy());
  const snap = ctx.snapshot();
  const target = resolveTarget(snap, req);
  if ('refused' in target) {
    refuse(client, target.refused);
    return;
  }
  const { route, site } = target;
  const now = Date.now();
  if (inMaintenance(site, now) || isPaused(site, now)) {
    refuse(client, 503);
    return;
  }
  const cookie = typeof req.headers.cookie === 'string' ? req.headers.cookie : undefined;
  const choice = select(route, cookie, target.path, ctx.signer, Date.now(), undefined);
  if (typeof choice === 'string') {
    refuse(client, 503);
    return;
  }
  const member = choice.member;
  if (choice.session !== undefined) ctx.sessions?.seen(member.key, choice.session, Date.now());
  const protocol = member.url.protocol;
  if (protocol !== 'http:' && protocol !== 'https:') {
    refuse(client, 502);
    return;
  }
  const secure = (req.socket as TLSSocket).encrypted === true;
  const address = req.socket.remoteAddress ?? '';
  const headers = upstreamHeaders(req.rawHeaders, connectionNamed(req.headers.connection), {
    clientAddress: address,
    trusted: snap.trusted !== undefined && listHas(snap.trusted, address),
    proto: secure ? 'https' : 'http',
    host: req.headers.host ?? target.host,
    upstreamHost: site.config.preserve_host ? (req.headers.host ?? target.host) : member.url.host,
    requestIdHeader: snap.requestIdHeader,
    requestId: target.requestId,
    upgrade: true,
    write: snap.config.forward_headers,
  });
  const path = memberPath(route, target.path);
  let headText = `${req.method} ${path} HTTP/1.1\r\n`;
  for (const [name, value] of headers) headText += `${name}: ${value}\r\n`;
  headText += '\r\n';
  const port = Number(member.url.port) || (protocol === 'https:' ? 443 : 80);
  const upstream: Socket =
    protocol === 'https:'
      ? tls.connect({ host: member.url.hostname, port, servername: member.url.hostname, rejectUnauthorized: member.config.tls_verify })
      : net.connect({ host: member.url.hostname, port });
  upstream.setTimeout(snap.config.timeouts.connect);
  let connected = false;
  const tunnels = member.tunnels;
  const clientSocket = client as Socket;
  tunnels.add(clientSocket);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    tunnels.delete(clientSocket);
    upstream.destroy();
    client.destroy();
  };
  upstream.once(protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.setNoDelay(true);
    upstream.write(headText);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('timeout', () => {
    if (!connected) member.failed('connect timeout (upgrade)', ctx.passive(), Date.now());
    close();
  });
  upstream.on('error', (error) => {
    if (!connected) {
      ctx.logger.warn({ member: member.key, err: error.message }, 'upgrade connect failed');
      if (!closed) refuse(client, 502);
      closed = true;
      tunnels.delete(clientSocket);
      return;
    }
    close();
  });
  // A half-closed tunnel (one side sent FIN) gets a moment to flush the other way, then goes.
  const halfClosed = () => setTimeout(close, HALF_CLOSE_MS).unref();
  upstream.on('end', halfClosed);
  client.on('end', halfClosed);
  upstream.on('close', close);
  client.on('error', close);
  client.on('close', close);
}
