// The exchange owns its member's in-flight slot: taken once per attempt and given back exactly once,
// whatever ends the attempt (a failed attempt, the answer in one write, the body streamed, the client
// leaving), so a member's in-flight count cannot drift.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { MemberRuntime } from '../../src/balance/member.js';
import { Exchange, type ClientRequest, type ClientResponse, type RouteMatch } from '../../src/proxy/exchange.js';
import type { Snapshot } from '../../src/proxy/snapshot.js';
import { idleTransport } from '../support/snapshot.js';

function exchange(res: Partial<ClientResponse> = {}): Exchange {
  const req = { socket: { encrypted: false }, headers: {} } as unknown as ClientRequest;
  return new Exchange(
    req,
    Object.assign(new EventEmitter(), { writableFinished: false }, res) as unknown as ClientResponse,
    {} as RouteMatch,
    {} as Snapshot,
    false,
    Date.now(),
  );
}

const member = () =>
  new MemberRuntime('prod-a/m0', 'prod-a', 'm0', { url: 'http://127.0.0.1:1', weight: 1 } as never, idleTransport);

describe('the exchange and its member slot', () => {
  it('gives a failed attempt’s slot back once, however often it is released', () => {
    const m = member();
    const x = exchange();
    x.claim(m);
    assert.equal(m.inFlight, 1);
    x.release();
    x.release();
    x.finish();
    assert.equal(m.inFlight, 0);
  });

  it('moves the slot to the member of the next attempt', () => {
    const first = member();
    const second = member();
    const x = exchange();
    x.claim(first);
    x.release();
    x.claim(second);
    assert.deepEqual([first.inFlight, second.inFlight], [0, 1]);
    x.finish();
    assert.deepEqual([first.inFlight, second.inFlight], [0, 0]);
  });

  it('gives a streaming body’s slot back when the client leaves, and stops the body', () => {
    const m = member();
    const x = exchange();
    const body = new PassThrough();
    x.claim(m);
    x.streaming(body);
    x.clientClosed();
    assert.equal(m.inFlight, 0);
    assert.equal(body.destroyed, true);
    x.finish();
    assert.equal(m.inFlight, 0);
  });

  it('abandons the wait for a member when the client leaves before the answer', () => {
    const m = member();
    const x = exchange();
    x.claim(m);
    x.clientClosed();
    assert.equal(x.cancel.aborted, true);
    // The attempt's rejection then releases the slot (forward.ts), once.
    x.release();
    x.clientClosed();
    assert.equal(m.inFlight, 0);
  });
});
