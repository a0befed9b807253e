// The upgrade's errors: one refused before anything started, and a next generation that did not serve.
import { DayshiftError } from '../errors.js';

/** Nothing was started (an upgrade under way, a step not safe to repeat, systemd): answered 409, exit 3. */
export class UpgradeRefusedError extends DayshiftError {
  readonly code = 'DAYSHIFT_UPGRADE_REFUSED';
}

/** The next generation failed to start, or did not serve in time: it was stopped, this one serves on. */
export class UpgradeFailedError extends DayshiftError {
  readonly code = 'DAYSHIFT_UPGRADE_FAILED';
}
