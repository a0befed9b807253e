// The config layer's error: every problem found in a configuration, each naming file:line:column and
// the key path, so `dayshift check` output can be acted on without reading the schema.
import { DayshiftError } from '../errors.js';

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted key path, e.g. sites.public.routes[0].balance */
  path: string;
  message: string;
}

/** A configuration refused: the CLI exits 2, a reload answers 422 and the running configuration stays. */
export class ConfigError extends DayshiftError {
  readonly code = 'DAYSHIFT_CONFIG';

  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}
