// The Node.js options a worker starts with: those the main was started with (`node
// --max-old-space-size=4096 --enable-source-maps dayshift start`), so that memory limits, source maps and
// --require/--import hooks hold in every process that serves, less the few that would clash with the main
// or make the worker run something other than its script. (NODE_OPTIONS reaches workers with the environment.)

/** Code given on the command line: a worker would run it instead of its script. */
const CODE_OPTIONS = ['-e', '--eval', '-p', '--print', '-pe'];
/** The inspector's options whose value may be the next argument (`--inspect-port 9230`) rather than after `=`. */
const INSPECTOR_VALUE_OPTIONS = ['--inspect-port', '--debug-port', '--inspect-publish-uid'];

/**
 * Whether an option stays with the main: code (above), and the inspector's (`--inspect`, `--inspect-brk`,
 * `--inspect-port`…): its port is the main's and would be taken, and a worker held at `--inspect-brk` would
 * miss its start deadline and be killed.
 */
function mainOnly(name: string): boolean {
  return name.startsWith('--inspect') || name === '--debug-port' || CODE_OPTIONS.includes(name);
}

/** `execArgv` (the main's process.execArgv) without the options that stay with the main. */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const equals = arg.indexOf('=');
    const written = equals < 0 ? arg : arg.slice(0, equals);
    // Node takes `--inspect_port` for `--inspect-port`.
    const name = written.startsWith('--') ? written.replaceAll('_', '-') : written;
    if (!mainOnly(name)) kept.push(arg);
    else if (equals < 0 && (CODE_OPTIONS.includes(name) || INSPECTOR_VALUE_OPTIONS.includes(name))) i++;
  }
  return kept;
}
