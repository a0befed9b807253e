// A worker process: serves the proxy listeners on the sockets its main process handed down, with the
// state, health and keys the main sends. It holds no store and runs no checks: when the main goes away
// (the IPC channel closes), it stops serving and exits.
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createLogger } from '../logger.js';
import { messageOf } from '../errors.js';
import type { MemberKey } from '../model.js';
import type { ProxyHandle, SessionObserver } from '../proxy/handle.js';
import { startProxy } from '../proxy/proxy.js';
import { adoptWorkerSockets } from '../socket-activation.js';
import { CertificateTable } from '../tls/certificates.js';
import type { InitMessage, MainMessage, SessionEvent, WorkerMessage } from './messages.js';
import { applyCertificateChange } from './shared-certificates.js';

/** How often sessions seen are sent to the main (drains wait minutes for sessions: a fraction of a second is nothing). */
const SESSION_BATCH_MS = 200;

/**
 * Sessions seen by this worker, sent to the main's SessionTracker in batches: one entry per session
 * per batch, so the channel carries the number of distinct sessions, not of requests.
 */
class SessionBatch implements SessionObserver {
  private pending = new Map<string, SessionEvent>();

  issued(member: MemberKey, session: string, now: number): void {
    this.pending.set(`${member} ${session}`, [member, session, 1, now]);
  }

  seen(member: MemberKey, session: string, now: number): void {
    const key = `${member} ${session}`;
    const entry = this.pending.get(key);
    if (entry) entry[3] = now;
    else this.pending.set(key, [member, session, 0, now]);
  }

  flush(): void {
    if (this.pending.size === 0) return;
    send({ type: 'sessions', events: [...this.pending.values()] });
    this.pending = new Map();
  }
}

function send(message: WorkerMessage): void {
  if (process.connected) process.send!(message);
}

async function serve(init: InitMessage): Promise<void> {
  const logger: Logger = createLogger(init.config.config.log).child({ worker: init.index });
  adoptWorkerSockets(init.sockets);
  const sessions = new SessionBatch();
  // With acme, the main orders the certificates and sends them (and the challenges) here.
  const certificates = init.certificates ? new CertificateTable() : undefined;
  for (const change of init.certificates ?? []) applyCertificateChange(certificates!, change);
  const proxy: ProxyHandle = await startProxy({
    config: init.config,
    state: init.state,
    logger,
    sessions,
    cookieSecret: init.cookieSecret,
    externalHealth: true,
    ...(certificates ? { certificates } : {}),
  });
  proxy.setHealth!(init.health);
  if (init.ticketKeys) proxy.setTicketKeys(Buffer.from(init.ticketKeys));
  const timer = setInterval(() => sessions.flush(), SESSION_BATCH_MS);

  let closing: Promise<void> | undefined;
  const close = (graceMs: number) => {
    closing ??= (async () => {
      clearInterval(timer);
      await proxy.close(graceMs).catch((err: unknown) => logger.error({ err }, 'error while closing'));
      sessions.flush();
      logger.flush();
      process.disconnect?.();
      process.exit(0);
    })();
  };

  const handle = (message: MainMessage) => {
    switch (message.type) {
      case 'apply':
        try {
          proxy.apply(message.config, message.state);
          proxy.setHealth!(message.health);
          send({ type: 'done', seq: message.seq });
        } catch (error) {
          send({ type: 'done', seq: message.seq, error: messageOf(error) });
        }
        return;
      case 'health':
        proxy.setHealth!(message.reports);
        return;
      case 'ticket-keys':
        proxy.setTicketKeys(Buffer.from(message.keys));
        return;
      case 'certificates':
        if (certificates) applyCertificateChange(certificates, message.change);
        send({ type: 'done', seq: message.seq });
        return;
      case 'stats':
        // Sessions first: the channel keeps order, so the main has them when it reads these figures.
        sessions.flush();
        send({ type: 'done', seq: message.seq, stats: proxy.stats() });
        return;
      case 'close-tunnels':
        void proxy.closeTunnels(message.members, message).then(
          (closed) => send({ type: 'done', seq: message.seq, closed }),
          (error: unknown) => send({ type: 'done', seq: message.seq, error: messageOf(error) }),
        );
        return;
      case 'close':
        close(message.graceMs);
        return;
      case 'init':
        return;
    }
  };
  // What came while the proxy started (a change, a close) is handled now, in order, before `ready`.
  process.off('message', early);
  process.on('message', handle);
  for (const message of queued.splice(0)) handle(message);
  // The main process is gone (killed): nobody will send state or take figures; finish what is in flight.
  process.off('disconnect', exitEarly);
  process.on('disconnect', () => close(init.config.config.timeouts.shutdown));
  if (!process.connected) close(init.config.config.timeouts.shutdown);
  const { http, https } = proxy.addresses();
  const plain = (a: AddressInfo) => ({ address: a.address, family: a.family, port: a.port });
  send({ type: 'ready', addresses: { http: http.map(plain), https: https.map(plain) } });
}

// Stopping is the main's to order (a `close` message, with the grace time): a signal to the whole process
// group (Ctrl-C, systemd's KillMode=control-group) must not cut this worker's requests short meanwhile.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);

/** Messages that arrive after `init` while the proxy starts: kept for serve() to handle once it can. */
const queued: MainMessage[] = [];
const early = (message: MainMessage) => {
  if (message.type !== 'init') {
    queued.push(message);
    return;
  }
  serve(message).catch((error: unknown) => {
    // The main says why (at start: `dayshift start` fails with it; later: it logs it and retries).
    if (!process.connected) process.exit(1);
    process.send!({ type: 'failed', error: messageOf(error) } satisfies WorkerMessage, () => process.exit(1));
  });
};
/** The main went away before this worker served: there is nothing to finish. */
const exitEarly = () => process.exit(1);
process.on('message', early);
process.on('disconnect', exitEarly);
