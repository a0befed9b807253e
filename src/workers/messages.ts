// What the main process and its workers say to each other over the IPC channel (advanced serialization:
// Buffers arrive as Uint8Array). Requests carry a sequence number; the worker answers each with `done`.
import type { LoadedConfig } from '../config/load.js';
import type { DesiredState, MemberKey } from '../model.js';
import type { HealthReport, ProxyStats } from '../proxy/handle.js';
import type { WantedListener } from '../socket-activation.js';
import type { CertificateChange } from './shared-certificates.js';

/** The first message a worker gets: everything it needs to start serving. */
export interface InitMessage {
  type: 'init';
  /** 1-based, for logs. */
  index: number;
  config: LoadedConfig;
  /** The listeners the sockets at fds 3.. serve, in that order. */
  sockets: WantedListener[];
  state: DesiredState;
  cookieSecret: string;
  health: HealthReport[];
  ticketKeys?: Uint8Array;
  /** With acme: the certificates and challenges the main's table holds now. */
  certificates?: CertificateChange[];
}

export type MainMessage =
  | InitMessage
  | { type: 'apply'; seq: number; config: LoadedConfig; state: DesiredState; health: HealthReport[] }
  | { type: 'health'; reports: HealthReport[] }
  | { type: 'ticket-keys'; keys: Uint8Array }
  | { type: 'certificates'; seq: number; change: CertificateChange }
  | { type: 'stats'; seq: number }
  | { type: 'close-tunnels'; seq: number; members: MemberKey[]; batch: number; intervalMs: number }
  | { type: 'close'; graceMs: number };

/**
 * Sessions a worker saw since its last batch: [member, session, issued (1) or only seen (0), when].
 * One entry per session and member however many requests it made (the latest time).
 */
export type SessionEvent = [MemberKey, string, 0 | 1, number];

export type WorkerMessage =
  | { type: 'ready'; addresses: { http: ListenerAddress[]; https: ListenerAddress[] } }
  /** The worker could not start (bad certificate, unresolvable member): it exits next. */
  | { type: 'failed'; error: string }
  | { type: 'done'; seq: number; error?: string; stats?: ProxyStats; closed?: number }
  | { type: 'sessions'; events: SessionEvent[] };

export interface ListenerAddress {
  address: string;
  family: string;
  port: number;
}
