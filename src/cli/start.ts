// `dayshift start`: run the proxy and the control plane in the foreground.
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, loadConfigFile } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { createLogger } from '../logger.js';
import { startDayshift, VERSION, type Dayshift } from '../dayshift.js';
import { adoptInheritedSockets, configuredListeners, SocketActivationError } from '../socket-activation.js';
import { registerUpgradeApi } from '../admin/upgrade-routes.js';
import { previousGeneration, reportToPreviousGeneration } from '../upgrade/next-generation.js';
import { Upgrader } from '../upgrade/upgrade.js';
import { UpgradeRefusedError } from '../upgrade/errors.js';
import { CliError, EXIT } from './output.js';
import { messageOf } from '../errors.js';

export function register(program: Command): void {
  program
    .command('start')
    .description(
      'run the proxy and the admin API in the foreground (SIGTERM: graceful stop; SIGHUP: reload; SIGUSR2: upgrade)',
    )
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .addHelpText(
      'after',
      '\nUnder systemd socket activation (LISTEN_FDS), listens on the sockets named http, https and admin instead of\n' +
        'binding them (docs/operations.md). SIGUSR2 (or `dayshift upgrade`) starts the code now installed on the same\n' +
        'sockets and hands over to it. Exit codes: 1 could not start, 2 bad config or an inherited socket that serves\n' +
        'no configured listener.',
    )
    .action(async (opts: { config: string }) => {
      // Started by `dayshift upgrade`: the previous generation waits to hear that this one serves, or why not.
      const previous = previousGeneration();
      // Taken from the start: SIGUSR2's default action would end a Dayshift that is still starting.
      let upgradeSignal = (): void => void process.stderr.write('SIGUSR2 ignored: Dayshift is still starting\n');
      process.on('SIGUSR2', () => upgradeSignal());
      let dayshift: Dayshift;
      try {
        dayshift = await start(opts.config, previous !== undefined);
      } catch (err) {
        if (previous !== undefined) await reportToPreviousGeneration({ type: 'failed', error: messageOf(err) });
        throw err;
      }
      const logger = dayshift.logger;
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping: no new connections, waiting for requests in flight');
        dayshift.close().then(
          () => {
            logger.info('stopped');
            logger.flush();
            process.exit(EXIT.ok);
          },
          (err: unknown) => {
            logger.error({ err }, 'error while stopping');
            logger.flush();
            process.exit(EXIT.failed);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => {
        dayshift.plane.reload({ who: 'signal:SIGHUP', from: 'local' }).catch((err: unknown) => {
          if (err instanceof ConfigError)
            logger.error({ problems: err.problems }, `configuration refused, the running one stays:\n${err.message}`);
          else logger.error({ err }, 'reload failed');
        });
      });
      const upgrader = new Upgrader({
        dayshift,
        version: VERSION,
        retire: () => stop('upgrade'),
        stopping: () => stopping,
      });
      registerUpgradeApi(dayshift.admin, upgrader);
      upgradeSignal = () => {
        // A failed upgrade is logged where it fails; a refused one here.
        upgrader.upgrade({ who: 'signal:SIGUSR2', from: 'local' }).catch((err: unknown) => {
          if (err instanceof UpgradeRefusedError) logger.warn(`upgrade refused: ${err.message}`);
        });
      };
      if (previous !== undefined) {
        await reportToPreviousGeneration({ type: 'ready', pid: process.pid, version: VERSION });
        logger.info({ previous }, `serving in place of the previous generation (pid ${previous})`);
        await dayshift.conductor
          .takeOver()
          .catch((err: unknown) => logger.error({ err }, 'could not carry the release on'));
      }
    });
}

/** Loads the config, adopts inherited sockets, starts Dayshift and logs where it listens. */
async function start(configFile: string, nextGeneration: boolean): Promise<Dayshift> {
  const loaded = await loadConfigFile(configFile);
  const logger = createLogger(loaded.config.log);
  let inherited;
  try {
    inherited = adoptInheritedSockets(configuredListeners(loaded.config));
  } catch (err) {
    if (err instanceof SocketActivationError) throw new CliError(`cannot start: ${err.message}`, EXIT.usage);
    throw err;
  }
  let dayshift;
  try {
    dayshift = await startDayshift(loaded, logger, { nextGeneration });
  } catch (err) {
    throw new CliError(`cannot start: ${messageOf(err)}`, EXIT.failed);
  }
  const { proxy, adminUrl, token } = dayshift;
  const listeners = proxy
    ? [
        ...proxy.addresses().http.map((a) => `http://${a.address}:${a.port}`),
        ...proxy.addresses().https.map((a) => `https://${a.address}:${a.port}`),
      ]
    : [];
  logger.info(
    {
      version: VERSION,
      listeners,
      inheritedSockets: inherited,
      admin: adminUrl,
      token: token.source,
      state: dayshift.stateDir,
      store: dayshift.store.description,
    },
    `dayshift ${VERSION} started: proxy ${listeners.join(', ')}; admin ${adminUrl}` +
      (token.generated ? `; admin token generated in ${token.source}` : ''),
  );
  return dayshift;
}
