// Builds the Driver a configuration asks for. The built-in proxy's driver lives with the proxy, so the
// caller supplies it; Apache and HAProxy drivers are built here.
import { isAbsolute, resolve } from 'node:path';
import type { DayshiftConfig } from '../config/schema.js';
import { ApacheDriver } from './apache/driver.js';
import type { Driver } from './driver.js';
import { HaproxyDriver } from './haproxy/driver.js';

export interface DriverFactories {
  /** Makes the built-in proxy's driver; required when the config uses (or defaults to) `builtin`. */
  builtin?: () => Driver;
  /** Directory relative paths in the driver section are resolved against (the config file's). */
  baseDir?: string;
}

export function createDriver(
  config: Pick<DayshiftConfig, 'driver' | 'clusters'>,
  factories: DriverFactories = {},
): Driver {
  const section = config.driver ?? { type: 'builtin' as const };
  const base = factories.baseDir ?? process.cwd();
  const path = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  switch (section.type) {
    case 'builtin':
      if (!factories.builtin) throw new Error('the built-in driver needs the proxy: createDriver(config, { builtin })');
      return factories.builtin();
    case 'apache':
      return new ApacheDriver(section, config.clusters);
    case 'haproxy':
      return new HaproxyDriver(
        {
          ...section,
          ...(section.socket === undefined ? {} : { socket: path(section.socket) }),
          ...(section.state_file === undefined ? {} : { state_file: path(section.state_file) }),
        },
        config.clusters,
      );
  }
}
