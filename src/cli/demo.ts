// `dayshift demo`: a full release under load on loopback, nothing to configure. `demo-deploy` is the
// demo's deploy hook (hidden: the demo's release plan runs it per member).
import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import { runDemo } from '../demo/demo.js';
import { deployMember } from '../demo/deploy.js';
import { CliError, emit, EXIT } from './output.js';
import { messageOf } from '../errors.js';

interface DemoFlags {
  keep?: boolean;
  json?: boolean;
  version: string;
  from: string;
  users: string;
  think: string;
  warmup: string;
  drainIdle: string;
  canary?: boolean;
  port?: string;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'run a full release under load on loopback: proxy, two clusters of demo app servers, synthetic users; nothing to configure',
    )
    .option('--keep', 'leave everything running after the release, to explore (Ctrl-C stops it)')
    .option('--version <v>', 'the version to release', '2.0')
    .option('--from <v>', 'the version the clusters run at first', '1.0')
    .option('--users <n>', 'synthetic users walking through checkouts at once', '20')
    .option('--think <duration>', 'pause between the pages of a checkout', '200ms')
    .option('--warmup <duration>', 'load before the release starts', '2s')
    .option('--drain-idle <duration>', 'a session not seen for this long no longer holds a drain', '2s')
    .option('--port <n>', 'the public port on 127.0.0.1 (default: a free one)')
    .option('--canary', 'shift traffic by canary steps (20%, 50%) watched by analysis, instead of a swap')
    .option('--json', 'print the result as JSON (progress goes to stderr)')
    .addHelpText(
      'after',
      '\nExit code 0 when the release succeeded with 0 failed requests and 0 sessions cut.\nTo see a release stop: --version 2.0-unhealthy (health gate), --version 2.0-broken (QA checks),\n--canary --version 2.0-broken (canary analysis rolls traffic back).',
    )
    .action(async (flags: DemoFlags) => {
      const users = Number(flags.users);
      if (!Number.isInteger(users) || users < 1 || users > 500)
        throw new CliError(`--users must be 1-500, got "${flags.users}"`, EXIT.usage);
      const ms = (name: string, text: string) => {
        const value = parseDuration(text);
        if (value === undefined)
          throw new CliError(`${name} expects a duration such as 200ms or 2s, got "${text}"`, EXIT.usage);
        return value;
      };
      const port = flags.port === undefined ? undefined : Number(flags.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
        throw new CliError(`--port must be a port number 1-65535, got "${flags.port}"`, EXIT.usage);
      const controller = new AbortController();
      const interrupt = () => controller.abort(new Error('interrupted'));
      process.once('SIGINT', interrupt);
      process.once('SIGTERM', interrupt);
      const write = (text: string) => (flags.json ? process.stderr : process.stdout).write(`${text}\n`);
      try {
        const report = await runDemo(
          {
            fromVersion: flags.from,
            version: flags.version,
            users,
            thinkMs: ms('--think', flags.think),
            warmupMs: ms('--warmup', flags.warmup),
            drainIdle: flags.drainIdle,
            keep: Boolean(flags.keep),
            canary: Boolean(flags.canary),
            ...(port === undefined ? {} : { port }),
          },
          { line: write },
          controller.signal,
        );
        if (!report) {
          write('stopped');
          process.exitCode = EXIT.ok;
          return;
        }
        if (flags.json) emit(true, report, () => '');
        if (!report.ok)
          throw new CliError(
            `the demo release did not go cleanly (${report.release.state}, ${report.load.failed} failed, ${report.load.cut} cut)`,
            EXIT.failed,
          );
      } finally {
        process.off('SIGINT', interrupt);
        process.off('SIGTERM', interrupt);
      }
    });

  program
    .command('demo-deploy', { hidden: true })
    .description("the demo's deploy hook: restart the demo app server at $DAYSHIFT_MEMBER_URL with $DAYSHIFT_VERSION")
    .action(async () => {
      try {
        process.stdout.write(`${await deployMember()}\n`);
      } catch (err) {
        throw new CliError(messageOf(err), EXIT.failed);
      }
    });
}
