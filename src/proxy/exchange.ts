// One client request between the proxy and a member: what it matched, the snapshot it is served on, the
// member slot it holds, its deadlines, and the answer it got. forward.ts drives it; respond.ts answers
// from it.
import { IncomingMessage, ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { MemberRuntime } from '../balance/member.js';
import type { Selection } from '../balance/select.js';
import { sendError } from './error-pages.js';
import type { H2Request } from './h2.js';
import type { LaneRequest } from './lane.js';
import { Cancel, type UpstreamResponse } from './member-transport.js';
import { UpstreamError } from './errors.js';
import type { PreviewPin } from './preview.js';
import { countStatus, type RouteSnapshot, type SiteSnapshot, type Snapshot } from './snapshot.js';

/** A client request as the forwarder sees it: Node's, the fast lane's (lane.ts), or an HTTP/2 stream's (h2.ts). */
export type ClientRequest = IncomingMessage | LaneRequest | H2Request;
/** What the forwarder and the error pages do with a response: ServerResponse, LaneResponse and H2Response fit. */
export interface ClientResponse extends NodeJS.WritableStream {
  statusCode: number;
  headersSent: boolean;
  destroyed: boolean;
  writableFinished: boolean;
  readonly req: { method?: string };
  writeHead(status: number, reason?: string, headers?: OutgoingHttpHeaders | string[]): this;
  writeHead(status: number, headers?: OutgoingHttpHeaders | string[]): this;
  getHeader(name: string): number | string | string[] | undefined;
  writeContinue(): void;
  destroy(): void;
}

/**
 * Calls `closed` once, when the response closes. Node's server emits no 'close' on the response to a
 * pipelined request still waiting for its turn (it has no socket yet) when the client connection closes,
 * so that response listens on the connection as well: otherwise it would never be logged or let go of.
 */
export function onResponseClose(req: ClientRequest, res: ClientResponse, closed: () => void): void {
  if (!(res instanceof ServerResponse) || res.socket !== null) {
    res.once('close', closed);
    return;
  }
  const socket = req.socket;
  const settle = () => {
    res.off('close', settle);
    socket.off('close', settle);
    closed();
  };
  res.once('close', settle);
  socket.once('close', settle);
}

/** What a request matched: its site and route, the path and host it asked for, and its request id. */
export interface RouteMatch {
  site: SiteSnapshot;
  route: RouteSnapshot;
  path: string;
  host: string;
  requestId: string;
}

/** The retry budget ran out while a member still had the request: that member timed out. */
export const BUDGET_SPENT = new UpstreamError('no response head within retries.budget', {
  phase: 'before-response',
  kind: 'timeout',
});

/**
 * State lives on this object rather than in closures over the forwarder's locals: closures stored on
 * long-lived objects kept every request's whole async frame alive past young-generation collections
 * (measured: 20× the bytes promoted, 4× the pause per scavenge). Every field is set in the constructor,
 * so that all exchanges share one shape.
 */
export class Exchange {
  readonly cancel = new Cancel();
  /** Whether the client reached this listener over TLS. */
  readonly secure: boolean;
  /** The member chosen, with the session it is bound by (set by forward.ts for each attempt). */
  choice: Selection | undefined = undefined;
  /** The preview this request is pinned by, when its route balances over the previewed cluster. */
  preview: PreviewPin | undefined = undefined;
  /** The member's answer and how long its head took (ms). */
  response: UpstreamResponse | undefined = undefined;
  latencyMs = 0;
  /** The member that answered, for the access log. */
  servedBy: string | undefined = undefined;
  /** The member exchange is over: answered, failed, or given up. */
  private finished = false;
  private totalTimer: NodeJS.Timeout | undefined = undefined;
  /** Armed only when an attempt could outlast the retry budget (a retry, or a budget under one attempt). */
  private budgetTimer: NodeJS.Timeout | undefined = undefined;
  /** The member whose in-flight slot this exchange holds, and its body while it streams to the client. */
  private member: MemberRuntime | undefined = undefined;
  private body: Readable | undefined = undefined;

  constructor(
    readonly req: ClientRequest,
    readonly res: ClientResponse,
    /** Replaced when a held request goes on: it is routed again on the snapshot then in force. */
    public match: RouteMatch,
    public snap: Snapshot,
    readonly expectContinue: boolean,
    readonly started: number,
  ) {
    this.secure = (req.socket as TLSSocket).encrypted === true;
  }

  /** Takes an in-flight slot on `member` for the attempt about to start. */
  claim(member: MemberRuntime): void {
    this.member = member;
    member.inFlight++;
  }

  /** Gives the member's in-flight slot back: the one place it is given back, whatever ended the attempt. */
  release(): void {
    const member = this.member;
    if (!member) return;
    this.member = undefined;
    this.body = undefined;
    member.inFlight--;
  }

  /** Gives up on the member after `ms` (timeouts.total), answered as a timeout. */
  limit(ms: number): void {
    this.totalTimer = setTimeout(timeOut, ms, this);
  }

  /** Gives up waiting for response headers `ms` from now (retries.budget), answered as a timeout. */
  budget(ms: number): void {
    this.budgetTimer ??= setTimeout(budgetSpent, ms, this);
  }

  /** Response headers arrived: the retry budget no longer applies. */
  answered(response: UpstreamResponse, latencyMs: number): void {
    if (this.budgetTimer) clearTimeout(this.budgetTimer);
    this.response = response;
    this.latencyMs = latencyMs;
  }

  /** The member exchange is over: its slot given back and its deadlines stopped. */
  finish(): void {
    this.release();
    if (this.finished) return;
    this.finished = true;
    if (this.totalTimer) clearTimeout(this.totalTimer);
    if (this.budgetTimer) clearTimeout(this.budgetTimer);
  }

  /** The member's body streams to the client; its end, its failure or the client's close finishes the exchange. */
  streaming(body: Readable): void {
    this.body = body;
  }

  /** The client connection closed: stop streaming the member's body, or abandon the wait for the member. */
  clientClosed(): void {
    const body = this.body;
    if (body) {
      this.finish();
      if (!this.res.writableFinished) body.destroy();
    } else if (!this.finished) {
      this.cancel.abort(new Error('client closed the connection'));
    }
  }

  /** Answers with one of the proxy's own pages (502/503/504, the site's file when it has one), counted. */
  fail(status: number, retryAfterSeconds?: number, message?: string): void {
    const site = this.match.site;
    countStatus(site, status);
    sendError(this.res, status, {
      accept: this.req.headers.accept,
      message,
      page: site.errorPages.get(status),
      retryAfterSeconds,
      requestIdHeader: this.snap.requestIdHeader,
      requestId: this.match.requestId,
    });
  }
}

function timeOut(exchange: Exchange): void {
  exchange.cancel.abort(new UpstreamError('total timeout', { phase: 'before-response', kind: 'timeout' }));
}

function budgetSpent(exchange: Exchange): void {
  exchange.cancel.abort(BUDGET_SPENT);
}
