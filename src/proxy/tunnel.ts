// Upgrade requests (WebSocket and others): the request head goes to the chosen member on a fresh
// connection. Only a 101 Switching Protocols makes a tunnel (bytes piped both ways, closed after
// timeouts.tunnel without a byte either way). Any other answer is an ordinary response: relayed, then
// the client's connection is closed, so that nothing the client sends after its upgrade request reaches
// a member unparsed. Each tunnel is counted on its member so a drain can see and close them.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { CLIENT_LEFT, type AccessEntry, type AccessLog } from './access-log.js';
import type { H2Request } from './h2.js';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { MemberRuntime, PassivePolicy } from '../balance/member.js';
import { select } from '../balance/select.js';
import type { StickySigner } from '../balance/sticky.js';
import type { SessionObserver } from './handle.js';
import { closeAfterFlush } from './closing.js';
import { connectionNamed, endToEnd, upstreamHeaders } from './headers.js';
import { ResponseParser, type ResponseEvents } from './http1/llhttp.js';
import { previewOf, resolveRoute } from './route.js';
import { connectMember } from './member-socket.js';
import { clientEnds, proxyHeader } from './proxy-protocol.js';
import { inMaintenance, listHas, memberPath, type Snapshot } from './snapshot.js';
import { isPaused } from './pause.js';

/** How long a half-closed tunnel (one side sent FIN) has to flush the other way. */
export const HALF_CLOSE_MS = 1000;
/** The only answer that switches a connection to a tunnel. */
export const SWITCHED = /^HTTP\/1\.1 101 /;

function refuse(socket: Duplex, status: number, flushMs: number, location?: string): void {
  const text = STATUS_CODES[status]!;
  const redirect = location === undefined ? '' : `Location: ${location}\r\n`;
  closeAfterFlush(
    socket,
    `HTTP/1.1 ${status} ${text}\r\n${redirect}Content-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\nConnection: close\r\n\r\n${text}\n`,
    flushMs,
  );
}

/**
 * CONNECT: Dayshift is a reverse proxy, not a forward one; the request gets a status line (405) and the
 * connection closes, rather than a bare close.
 */
export function refuseConnect(socket: Duplex, flushMs: number): void {
  socket.on('error', () => socket.destroy());
  refuse(socket, 405, flushMs);
}

export interface TunnelContext {
  snapshot(): Snapshot;
  accessLog(): AccessLog | undefined;
  signer: StickySigner;
  sessions: SessionObserver | undefined;
  logger: Logger;
  passive(): PassivePolicy;
}

export function handleUpgrade(ctx: TunnelContext, req: IncomingMessage, client: Duplex, head: Buffer): void {
  // node:http hands the socket over without its own error handler: a reset while we refuse or connect
  // must not become an uncaught 'error' event.
  client.on('error', () => client.destroy());
  const target = openUpgrade(ctx, req, req.method ?? 'GET', req.rawHeaders, (status, location) =>
    refuse(client, status, ctx.snapshot().config.timeouts.idle, location),
  );
  if (!target) return;
  new Upgrade(ctx, target, req.method === 'HEAD', client as Socket, head);
}

/** Where an upgrade request goes: its member, the connection to it, and the request head to write there. */
export interface UpgradeTarget {
  member: MemberRuntime;
  upstream: Socket;
  headText: string;
  timeouts: Timeouts;
  /** limits.response_head: the member's answer head, at most (past it: 502). */
  headBytes: number;
  /** The access log line, but for what is known only at the end. */
  entry: Omit<AccessEntry, 'status' | 'bytes' | 'durationMs'>;
  started: number;
}

/**
 * Logs an upgrade once it is over, as HAProxy and nginx log a WebSocket: the status the client got (101
 * or 200 for a tunnel), the bytes the member sent in all, and how long it lasted.
 */
export function logUpgrade(ctx: TunnelContext, target: UpgradeTarget, status: number | undefined): void {
  const log = ctx.accessLog();
  if (!log) return;
  const now = Date.now();
  log.write(
    {
      ...target.entry,
      status: status ?? CLIENT_LEFT,
      bytes: target.upstream.bytesRead,
      durationMs: now - target.started,
    },
    now,
  );
}

/**
 * Routes an upgrade request as an ordinary one is routed (site, route, maintenance, pause, stickiness,
 * previews), and connects to the member chosen. `method` and `raw` are what the member gets: the client's
 * own for HTTP/1.1; GET and the headers of an Upgrade for WebSocket over HTTP/2 (h2-tunnel.ts). Undefined,
 * after `refuse` was called with the status, when nothing can take the request.
 */
export function openUpgrade(
  ctx: TunnelContext,
  req: IncomingMessage | H2Request,
  method: string,
  raw: string[],
  refuse: (status: number, location?: string) => void,
): UpgradeTarget | undefined {
  const snap = ctx.snapshot();
  const match = resolveRoute(snap, req);
  if ('refused' in match) {
    refuse(match.refused, match.location);
    return undefined;
  }
  const { route, site } = match;
  const now = Date.now();
  if (inMaintenance(site, now) || isPaused(site, now)) {
    refuse(503);
    return undefined;
  }
  const cookie = typeof req.headers.cookie === 'string' ? req.headers.cookie : undefined;
  const preview =
    snap.previews.size > 0 ? previewOf(snap, ctx.signer, cookie, req.socket.remoteAddress ?? '', now) : undefined;
  const choice = select(
    route,
    cookie,
    match.path,
    ctx.signer,
    now,
    undefined,
    preview && route.clusters.get(preview.cluster),
  );
  if (typeof choice === 'string') {
    refuse(503);
    return undefined;
  }
  const member = choice.member;
  if (choice.session !== undefined) ctx.sessions?.seen(member.key, choice.session, Date.now());
  const protocol = member.url.protocol;
  if (protocol !== 'http:' && protocol !== 'https:') {
    refuse(502);
    return undefined;
  }
  const secure = (req.socket as TLSSocket).encrypted === true;
  const address = req.socket.remoteAddress ?? '';
  const headers = upstreamHeaders(raw, connectionNamed(req.headers.connection), {
    clientAddress: address,
    trusted: snap.trusted !== undefined && listHas(snap.trusted, address),
    proto: secure ? 'https' : 'http',
    host: req.headers.host ?? match.host,
    upstreamHost: site.config.preserve_host ? (req.headers.host ?? match.host) : member.url.host,
    requestIdHeader: snap.requestIdHeader,
    requestId: match.requestId,
    upgrade: true,
    write: snap.config.forward_headers,
  });
  const path = memberPath(route, match.path);
  let headText = `${method} ${path} HTTP/1.1\r\n`;
  for (const [name, value] of headers) headText += `${name}: ${value}\r\n`;
  headText += '\r\n';
  const version = member.config.proxy_protocol;
  const header =
    version &&
    proxyHeader(version, ...clientEnds(address, req.socket.remotePort, req.socket.localAddress, req.socket.localPort));
  const upstream = connectMember({ url: member.url, rejectUnauthorized: member.config.tls_verify, header });
  const entry = {
    client: address || '-',
    method: req.method ?? '-',
    path: req.url ?? '-',
    httpVersion: req.httpVersion,
    referer: req.headers.referer,
    userAgent: req.headers['user-agent'],
    host: match.host,
    site: site.name,
    member: member.key,
    requestId: match.requestId,
  };
  const { timeouts, limits } = snap.config;
  return { member, upstream, headText, timeouts, headBytes: limits.response_head, entry, started: now };
}

type Timeouts = Snapshot['config']['timeouts'];

/** What an upgrade (HTTP/1.1 or HTTP/2) hears of its member connection, besides the bytes. */
export interface MemberSide {
  /** Connected: the request head is written next. */
  connected(): void;
  /** The connection failed (502) or timed out (504). */
  fail(status: 502 | 504): void;
  /** The member sent FIN. */
  ended(): void;
}

/**
 * Writes the upgrade's request head once the member connection is up, and tells `side` what becomes of
 * the connection. It gets timeouts.connect (a timeout then counts as a member failure), then the answer
 * head timeouts.first_byte, as an ordinary request.
 */
export function startUpgrade(ctx: TunnelContext, target: UpgradeTarget, side: MemberSide): void {
  const { upstream, timeouts, member } = target;
  let connected = false;
  upstream.setTimeout(timeouts.connect);
  upstream.once(upstream instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
    connected = true;
    side.connected();
    upstream.setTimeout(timeouts.first_byte);
    upstream.setNoDelay(true);
    upstream.write(target.headText);
  });
  upstream.on('timeout', () => {
    if (!connected) member.failed('connect timeout (upgrade)', ctx.passive(), Date.now());
    side.fail(504);
  });
  upstream.on('error', (error) => {
    if (!connected) ctx.logger.warn({ member: member.key, err: error.message }, 'upgrade connect failed');
    side.fail(502);
  });
  upstream.on('end', () => side.ended());
  upstream.on('close', () => side.fail(502));
}

/** One upgrade request, from the member connection to a tunnel, or to an ordinary answer and a close. */
class Upgrade {
  private phase: 'connecting' | 'answer' | 'relay' | 'tunnel' | 'closed' = 'connecting';
  /** The member's answer so far, until its head is complete. */
  private answer: Buffer | undefined;
  /** Something of the member's answer has gone to the client (the 101, or a relayed head): too late for a status. */
  private answered = false;
  /** What the client got: 101, or the member's other answer (for the access log). */
  private status: number | undefined;
  private parser: ResponseParser | undefined;
  private readonly onData = (data: Buffer) => this.fromMember(data);

  constructor(
    private readonly ctx: TunnelContext,
    private readonly target: UpgradeTarget,
    private readonly bodyless: boolean,
    private readonly client: Socket,
    /** What the client sent after its request head: for the member only once it has switched. */
    private readonly early: Buffer,
  ) {
    target.member.tunnels.add(client);
    startUpgrade(ctx, target, {
      connected: () => (this.phase = 'answer'),
      fail: (status) => this.fail(status),
      ended: () => this.memberEnded(),
    });
    target.upstream.on('data', this.onData);
    client.on('error', () => this.close());
    client.on('close', () => this.close());
  }

  private fromMember(data: Buffer): void {
    if (this.phase === 'relay') {
      this.relay(data);
      return;
    }
    if (this.phase !== 'answer') return;
    const answer = (this.answer = this.answer ? Buffer.concat([this.answer, data]) : data);
    if (answer.indexOf('\r\n\r\n') < 0) {
      if (answer.length > this.target.headBytes) this.fail(502);
      return;
    }
    this.answer = undefined;
    if (SWITCHED.test(answer.toString('latin1', 0, 13))) this.switch(answer);
    else {
      // Not switched: an ordinary answer, relayed; the client's connection closes after it.
      this.phase = 'relay';
      this.target.upstream.setTimeout(this.target.timeouts.idle);
      this.parser = new ResponseParser(this.relayEvents(), this.target.headBytes);
      this.relay(answer);
    }
  }

  /** 101: the 101 and what follows go to the client, the client's bytes to the member, both ways from now on. */
  private switch(answer: Buffer): void {
    const { client } = this;
    const { upstream, timeouts } = this.target;
    this.phase = 'tunnel';
    this.answered = true;
    this.status = 101;
    upstream.setTimeout(0);
    upstream.off('data', this.onData);
    client.write(answer);
    if (this.early.length > 0) upstream.write(this.early);
    upstream.pipe(client);
    client.pipe(upstream);
    // No byte either way for timeouts.tunnel closes both sides (the client socket's timer sees both
    // directions: it reads what the client sends and writes what the member sends).
    client.setTimeout(timeouts.tunnel);
    client.on('timeout', () => this.close());
    // A half-closed tunnel (one side sent FIN) gets a moment to flush the other way, then goes.
    const halfClosed = () => setTimeout(() => this.close(), HALF_CLOSE_MS).unref();
    upstream.on('end', halfClosed);
    client.on('end', halfClosed);
  }

  private relay(data: Buffer): void {
    const error = this.parser!.execute(data);
    if (typeof error === 'string') this.fail(502);
  }

  private relayEvents(): ResponseEvents {
    const { client } = this;
    const { upstream } = this.target;
    return {
      headersComplete: (status, statusText, headers) => {
        // The member's headers without its framing and hop-by-hop ones: the body goes out as it is
        // decoded, delimited by the close (its Content-Length, when it has one, is kept).
        let text = `HTTP/1.1 ${status} ${statusText}\r\n`;
        const kept = endToEnd(headers);
        for (let i = 0; i < kept.length; i += 2) text += `${kept[i]}: ${kept[i + 1]}\r\n`;
        client.write(`${text}connection: close\r\n\r\n`, 'latin1');
        this.answered = true;
        this.status = status;
        return this.bodyless;
      },
      body: (chunk) => {
        if (client.write(chunk)) return;
        upstream.pause();
        client.once('drain', () => upstream.resume());
      },
      messageComplete: () => this.done(),
    };
  }

  private memberEnded(): void {
    if (this.phase === 'tunnel') return;
    // A body delimited by the member's close is complete now (done()); anything else was cut short.
    if (this.phase === 'relay') this.parser!.finish();
    this.fail(502);
  }

  /** The relayed answer is complete: the client's connection closes after it. */
  private done(): void {
    if (this.phase !== 'relay') return;
    this.release();
    closeAfterFlush(this.client, undefined, this.target.timeouts.idle);
  }

  /** The exchange failed: a status to the client when nothing was answered yet, else a cut connection. */
  private fail(status: number): void {
    if (this.phase === 'closed') return;
    if (this.answered || this.client.destroyed) {
      this.close();
      return;
    }
    this.release(status);
    refuse(this.client, status, this.target.timeouts.idle);
  }

  private release(status = this.status): void {
    this.phase = 'closed';
    logUpgrade(this.ctx, this.target, status);
    this.target.member.tunnels.delete(this.client);
    this.parser?.free();
    this.target.upstream.destroy();
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.release();
    this.client.destroy();
  }
}
