// A client for HAProxy's Runtime API (the `stats socket`): one command per connection, written as a line,
// the answer read until HAProxy closes the connection. Works over a unix socket or TCP.
import { connect, type NetConnectOpts } from 'node:net';
import { BalancerApiError } from '../errors.js';

export type RuntimeApiTarget = { socket: string } | { host: string; port: number };

export class RuntimeApiClient {
  constructor(
    private readonly target: RuntimeApiTarget,
    private readonly timeoutMs: number,
  ) {}

  get where(): string {
    return 'socket' in this.target ? this.target.socket : `${this.target.host}:${this.target.port}`;
  }

  /** Sends one command and resolves with HAProxy's whole answer. */
  command(line: string): Promise<string> {
    if (/[\r\n;]/.test(line))
      return Promise.reject(
        new BalancerApiError(`refusing a command with a line break or ";": ${JSON.stringify(line)}`),
      );
    const options: NetConnectOpts =
      'socket' in this.target ? { path: this.target.socket } : { host: this.target.host, port: this.target.port };
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(options, () => socket.end(`${line}\n`));
      socket.setTimeout(this.timeoutMs, () => socket.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', (err) => reject(new BalancerApiError(`HAProxy Runtime API at ${this.where}: ${err.message}`)));
      socket.on('close', (hadError) => {
        if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
  }

  /**
   * A command that answers nothing on success (`set server ...`); any text is HAProxy's refusal.
   */
  async change(line: string): Promise<void> {
    const answer = (await this.command(line)).trim();
    if (answer !== '') throw new BalancerApiError(`HAProxy refused "${line}": ${answer}`);
  }
}

/** Parses `show stat` CSV ("# pxname,svname,...") into records keyed by column name. */
export function parseStatCsv(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]?.replace(/^#\s*/, '').split(',');
  if (!header || !lines[0]!.startsWith('#'))
    throw new BalancerApiError(`unexpected "show stat" answer: ${lines[0] ?? '(empty)'}`);
  return lines.slice(1).map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(header.map((h, i) => [h, cells[i] ?? '']));
  });
}

/** Parses `show servers state` (format version 1) into records keyed by column name. */
export function parseServersState(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const headerLine = lines.find((l) => l.startsWith('#'));
  if (lines[0]?.trim() !== '1' || !headerLine)
    throw new BalancerApiError(`unexpected "show servers state" answer: ${lines[0] ?? '(empty)'}`);
  const header = headerLine.replace(/^#\s*/, '').split(/\s+/);
  return lines
    .filter((l) => !l.startsWith('#') && l.trim() !== '1')
    .map((line) => {
      const cells = line.trim().split(/\s+/);
      return Object.fromEntries(header.map((h, i) => [h, cells[i] ?? '']));
    });
}
