// The drivers' errors: what a load balancer cannot do, what its control interface answered, and an
// httpd.conf Dayshift cannot read.
import { DayshiftError } from '../errors.js';
import type { DriverName } from './driver.js';

/** The load balancer cannot do this (a weight out of its range, a state it has no word for). */
export class DriverUnsupportedError extends DayshiftError {
  readonly code = 'DAYSHIFT_DRIVER_UNSUPPORTED';

  constructor({ driver, what }: { driver: DriverName; what: string }) {
    super(`the ${driver} driver cannot ${what}`);
  }
}

/**
 * The load balancer's control interface (HAProxy's Runtime API, Apache's balancer-manager) was out of
 * reach, refused a change or answered something unexpected; the message names the interface.
 */
export class BalancerApiError extends DayshiftError {
  readonly code = 'DAYSHIFT_BALANCER_API';
}

/** An httpd.conf (or a file it includes) Dayshift cannot read; `line` is 0 for the file as a whole. */
export class ApacheConfError extends DayshiftError {
  readonly code = 'DAYSHIFT_APACHE_CONF';
  readonly file: string;
  readonly line: number;

  constructor(message: string, { file, line }: { file: string; line: number }) {
    super(`${file}:${line}: ${message}`);
    this.file = file;
    this.line = line;
  }
}
