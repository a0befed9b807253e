// The release layer's errors: a command the conductor turns down, and a step that failed.

/** A request the conductor turns down; nothing was changed. `status` is the HTTP status the API answers. */
export class ReleaseRefusedError extends Error {
  constructor(message: string, readonly status: 400 | 404 | 409 = 409) {
    super(message);
    this.name = 'ReleaseRefusedError';
  }
}

/** A release step failed for a reason the operator can act on; `output` is what it printed before. */
export class ReleaseStepError extends Error {
  constructor(message: string, readonly output?: string[]) {
    super(message);
    this.name = 'ReleaseStepError';
  }
}
