// The control plane's errors: a change the safety rules refuse, and a target that names nothing.
import { DayshiftError } from '../errors.js';

/** A change the safety rules refuse; nothing was changed. The admin API answers 409, the CLI exits 3. */
export class RefusedError extends DayshiftError {
  readonly code = 'DAYSHIFT_REFUSED';
}

/** A target (CLUSTER, CLUSTER/MEMBER or a site) that is malformed or names nothing configured; answered 404. */
export class TargetError extends DayshiftError {
  readonly code = 'DAYSHIFT_UNKNOWN_TARGET';
}

/** A preview the config cannot serve, or one that does not exist; nothing was changed. */
export class PreviewError extends DayshiftError {
  readonly code = 'DAYSHIFT_PREVIEW_REFUSED';
}

/** A shadow the config or the traffic state cannot take, or none to stop; nothing was changed. */
export class ShadowError extends DayshiftError {
  readonly code = 'DAYSHIFT_SHADOW_REFUSED';
}
