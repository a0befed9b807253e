// The proxy's errors: a member exchange that failed (retry and 502/504 decide on it), and AJP packets
// that cannot be written or were read malformed. Created on failures only, never per request.
import { DayshiftError } from '../errors.js';
import type { FailurePhase } from './member-transport.js';

/** Why an exchange with a member failed: 'timeout' becomes 504, everything else 502. */
export type UpstreamFailure = 'timeout' | 'protocol' | 'network' | 'refused';

const UPSTREAM_CODES = {
  timeout: 'DAYSHIFT_UPSTREAM_TIMEOUT',
  protocol: 'DAYSHIFT_UPSTREAM_PROTOCOL',
  network: 'DAYSHIFT_UPSTREAM_NETWORK',
  refused: 'DAYSHIFT_UPSTREAM_REFUSED',
} as const satisfies Record<UpstreamFailure, string>;

export interface UpstreamErrorOptions {
  phase: FailurePhase;
  /** The connection was a reused idle one (a failure before any response byte may be a stale socket). */
  reusedConnection?: boolean;
  /** Default 'network'. */
  kind?: UpstreamFailure;
  cause?: unknown;
}

/** An exchange with a member failed; where (`phase`) decides whether a retry is safe. */
export class UpstreamError extends DayshiftError {
  readonly phase: FailurePhase;
  readonly reusedConnection: boolean;
  readonly kind: UpstreamFailure;

  constructor(message: string, { phase, reusedConnection = false, kind = 'network', cause }: UpstreamErrorOptions) {
    super(message, cause === undefined ? undefined : { cause });
    this.phase = phase;
    this.reusedConnection = reusedConnection;
    this.kind = kind;
  }

  get code(): (typeof UPSTREAM_CODES)[UpstreamFailure] {
    return UPSTREAM_CODES[this.kind];
  }
}

/** The request cannot be expressed in one AJP packet (or at all): the member never sees it. */
export class AjpEncodeError extends DayshiftError {
  readonly code = 'DAYSHIFT_AJP_ENCODE';
}

/** The member sent bytes that are not a well-formed AJP packet. */
export class AjpProtocolError extends DayshiftError {
  readonly code = 'DAYSHIFT_AJP_PROTOCOL';
}
