// The release layer's errors: a command the conductor turns down, and a step that failed.
import { DayshiftError } from '../errors.js';

/** A request the conductor turns down; nothing was changed. `status` is the HTTP status the API answers. */
export class ReleaseRefusedError extends DayshiftError {
  readonly code = 'DAYSHIFT_RELEASE_REFUSED';
  readonly status: 400 | 404 | 409;

  constructor(message: string, { status = 409 }: { status?: 400 | 404 | 409 } = {}) {
    super(message);
    this.status = status;
  }
}

/** A release step failed for a reason the operator can act on; `output` is what it printed before. */
export class ReleaseStepError extends DayshiftError {
  readonly code = 'DAYSHIFT_RELEASE_STEP';
  readonly output: string[] | undefined;

  constructor(message: string, { output }: { output?: string[] } = {}) {
    super(message);
    this.output = output;
  }
}
