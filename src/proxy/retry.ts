// Whether a failed member exchange is tried again, and where. One pure function of the failure and the
// request's progress, so that the policy reads (and is tested) as a table: HAProxy's `retry-on`
// conditions, nginx's rule that a request that may have run is only replayed when it is idempotent, and
// one time budget for all attempts together (nginx `proxy_next_upstream_timeout`).
import type { RetryCondition } from '../model.js';
import type { FailurePhase } from './member-transport.js';
import type { UpstreamError } from './errors.js';

/** RFC 9110 §9.2.2: what may be sent twice without changing the outcome. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface RetryPolicy {
  /** Attempts in total, the first included (retries.attempts). */
  attempts: number;
  /** Conditions worth another member (retries.on). */
  on: ReadonlySet<RetryCondition>;
}

export interface FailedAttempt {
  error: Pick<UpstreamError, 'phase' | 'kind' | 'reusedConnection'>;
  method: string;
  /** Nothing of the request body has been read yet (it can be sent again). */
  bodyIntact: boolean;
  /** Attempts made so far, this one included (a stale-connection retry not counted). */
  attempts: number;
  /** The one retry on a fresh connection after a stale kept-alive one was used already. */
  staleRetried: boolean;
  /** Milliseconds left of the retry budget. */
  msLeft: number;
}

/**
 * `stale`: the same member again, on a fresh connection (a kept-alive one closed under the request);
 * `next`: another member; `stop`: answer the client with the error (502, or 504 for a timeout).
 */
export type RetryVerdict = 'stale' | 'next' | 'stop';

/**
 * The `retry-on` condition of a failure; undefined once response headers arrived (never retried), and
 * for a busy member's queue, which retryDecision settles before any condition.
 */
export function failureCondition(phase: FailurePhase, kind: UpstreamError['kind']): RetryCondition | undefined {
  switch (phase) {
    case 'queue':
      return undefined;
    case 'connect':
    case 'before-send':
      return 'conn-failure';
    case 'before-response':
      return kind === 'timeout' ? 'response-timeout' : kind === 'protocol' ? 'junk-response' : 'empty-response';
    case 'during-response':
      return undefined;
  }
}

export function retryDecision(policy: RetryPolicy, failed: FailedAttempt): RetryVerdict {
  const { error, method } = failed;
  if (!failed.bodyIntact || failed.msLeft <= 0) return 'stop';
  // A busy member never saw the request. Past its full queue another member is tried, whatever
  // retries.on says (HAProxy redispatches past maxqueue); a wait that ran past timeouts.queue is
  // answered 503 at once, as HAProxy does, rather than queueing again elsewhere.
  if (error.phase === 'queue') return error.kind === 'timeout' || failed.attempts >= policy.attempts ? 'stop' : 'next';
  const condition = failureCondition(error.phase, error.kind);
  if (condition === undefined) return 'stop';
  // Past a sent request only an idempotent one is replayed (RFC 9110 §9.2.2): the member may have run it.
  const replayable = condition === 'conn-failure' || IDEMPOTENT.has(method);
  // A kept-alive connection the member closed just as it was reused: once more, fresh, on the same member.
  if (error.reusedConnection && !failed.staleRetried && condition === 'empty-response' && replayable) return 'stale';
  if (!policy.on.has(condition) || !replayable || failed.attempts >= policy.attempts) return 'stop';
  return 'next';
}
