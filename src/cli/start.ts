// `dayshift start`: run the proxy and the control plane in the foreground.
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, loadConfigFile } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { createLogger } from '../logger.js';
import { startDayshift, VERSION } from '../dayshift.js';
import { adoptInheritedSockets, configuredListeners, SocketActivationError } from '../socket-activation.js';
import { CliError, EXIT } from './output.js';
import { messageOf } from '../errors.js';

export function register(program: Command): void {
  program
    .command('start')
    .description('run the proxy and the admin API in the foreground (SIGTERM: graceful stop; SIGHUP: reload)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_FILE)
    .addHelpText(
      'after',
      '\nUnder systemd socket activation (LISTEN_FDS), listens on the sockets named http, https and admin instead of\n' +
        'binding them (docs/operations.md). Exit codes: 1 could not start, 2 bad config or an inherited socket that\n' +
        'serves no configured listener.',
    )
    .action(async (opts: { config: string }) => {
      const loaded = await loadConfigFile(opts.config);
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
        dayshift = await startDayshift(loaded, logger);
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
    });
}
