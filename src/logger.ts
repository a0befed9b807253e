// Structured logs: JSON lines for machines, pretty lines on a terminal. Writes are asynchronous so that
// the proxy's hot path never blocks on a slow terminal or disk.
import { pino, type Logger } from 'pino';
import type { DayshiftConfig } from './config/schema.js';

export function createLogger(
  options: DayshiftConfig['log'],
  destination: NodeJS.WritableStream = process.stderr,
): Logger {
  const pretty =
    options.format === 'pretty' || (options.format === 'auto' && (destination as NodeJS.WriteStream).isTTY === true);
  if (pretty) {
    return pino({
      level: options.level,
      transport: {
        target: 'pino-pretty',
        options: {
          destination: destination === process.stdout ? 1 : 2,
          translateTime: 'HH:MM:ss.l',
          ignore: 'pid,hostname',
        },
      },
    });
  }
  return pino(
    { level: options.level, base: undefined },
    pino.destination({ dest: destination === process.stdout ? 1 : 2, sync: false }),
  );
}
