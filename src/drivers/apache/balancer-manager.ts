// A client for Apache httpd 2.4's balancer-manager (mod_proxy_balancer). Rules it follows, checked on
// 2.4.71 (docs/drivers.md): changes are POSTed form-encoded; every request carries a Referer whose host is
// the request's host, or httpd drops all parameters and still answers 200; changes carry the balancer's
// nonce, read from `?xml=1`. httpd answers 200 to changes it ignored, so callers read the result back.
import { request } from 'undici';
import { escapeRegex } from '../../regex.js';
import { messageOf } from '../../errors.js';
import { BalancerApiError } from '../errors.js';

/** The member flags the manager can set (w_status_X). */
export type WorkerFlag = 'D' | 'N' | 'H' | 'S' | 'I' | 'R';

export interface Worker {
  /** The BalancerMember URL exactly as httpd names it, e.g. ajp://web-1.prod-a.example.com:8009 */
  name: string;
  route: string;
  loadfactor: number;
  /** Status tokens: Init, Ok, Dis, Stop, Drn, Stby, Err, HcFl, ... */
  status: string[];
  /** Requests in flight on this member now. */
  busy: number;
  /** Requests sent to this member since httpd started (sticky ones to a draining member included). */
  elected: number;
}

export interface Balancer {
  /** Without balancer:// */
  name: string;
  nonce: string;
  stickysession: string;
  lbmethod: string;
  workers: Worker[];
}

export interface WorkerChange {
  flags?: Partial<Record<WorkerFlag, boolean>>;
  loadfactor?: number;
}

const STATUS_FLAG: Record<WorkerFlag, string> = { D: 'Dis', N: 'Drn', H: 'Stby', S: 'Stop', I: 'Ign', R: 'Spar' };

export function hasFlag(worker: Worker, flag: WorkerFlag): boolean {
  return worker.status.includes(STATUS_FLAG[flag]);
}

export class BalancerManagerClient {
  private readonly target: URL;
  private readonly headers: Record<string, string>;

  /** `host`: the Host header to send instead of url's (a name-based VirtualHost that holds the manager). */
  constructor(
    url: string,
    private readonly timeoutMs: number,
    host?: string,
  ) {
    const parsed = new URL(url);
    this.headers = {};
    if (parsed.username !== '') {
      const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
      this.headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
      parsed.username = '';
      parsed.password = '';
    }
    parsed.search = '';
    parsed.hash = '';
    this.target = parsed;
    // httpd drops every parameter (?xml=1 included) and logs AH10187 unless the Referer's host is the
    // request's server name: the Host header's host, so the Referer names the same host.
    if (host !== undefined) this.headers.host = host;
    this.headers.referer = host === undefined ? parsed.toString() : `${parsed.protocol}//${host}${parsed.pathname}`;
  }

  get url(): string {
    return this.target.toString();
  }

  async balancers(): Promise<Balancer[]> {
    const text = await this.send('GET', '?xml=1');
    if (!text.includes('<httpd:manager')) {
      throw new BalancerApiError(
        `${this.url}?xml=1 did not answer XML: is it the balancer-manager handler (SetHandler balancer-manager)?`,
      );
    }
    const balancers = parseManagerXml(text);
    if (balancers.some((b) => b.nonce === '')) {
      // httpd before 2.4.(mid) has no <httpd:nonce>; the HTML page links carry it.
      const html = await this.send('GET', '');
      for (const b of balancers) {
        const escaped = escapeRegex(b.name);
        b.nonce ||= new RegExp(`[?&]b=${escaped}&amp;nonce=([^"&]+)`).exec(html)?.[1] ?? '';
      }
    }
    return balancers;
  }

  /**
   * Whether httpd keeps manager changes across restarts (BalancerPersist On), read from the HTML page;
   * undefined when the page does not say (older 2.4).
   */
  async persists(): Promise<boolean | undefined> {
    const html = await this.send('GET', '');
    if (html.includes('will be persisted on restart')) return true;
    if (html.includes('will NOT be persisted on restart')) return false;
    return undefined;
  }

  /** Sends one member change. The answer tells nothing (200 even when ignored): read it back after. */
  async update(balancer: Balancer, worker: string, change: WorkerChange): Promise<void> {
    const form = new URLSearchParams({ b: balancer.name, w: worker, nonce: balancer.nonce });
    for (const [flag, on] of Object.entries(change.flags ?? {})) form.set(`w_status_${flag}`, on ? '1' : '0');
    if (change.loadfactor !== undefined) form.set('w_lf', String(change.loadfactor));
    await this.send('POST', '', form.toString());
  }

  private async send(method: 'GET' | 'POST', query: string, body?: string): Promise<string> {
    const url = `${this.url}${query}`;
    let res;
    try {
      res = await request(url, {
        method,
        headers:
          body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/x-www-form-urlencoded' },
        ...(body === undefined ? {} : { body }),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (err) {
      throw new BalancerApiError(`cannot reach the balancer-manager at ${this.url}: ${messageOf(err)}`);
    }
    const text = await res.body.text();
    if (res.statusCode === 401)
      throw new BalancerApiError(`${this.url} asks for credentials: put user:password@ in driver.url`);
    if (res.statusCode === 403)
      throw new BalancerApiError(
        `${this.url} answered 403: allow this host in the balancer-manager <Location> (Require ip ...)`,
      );
    if (res.statusCode !== 200) throw new BalancerApiError(`${this.url} answered ${res.statusCode}`);
    return text;
  }
}

function tag(block: string, name: string): string | undefined {
  const match = new RegExp(`<httpd:${name}>([^<]*)</httpd:${name}>`).exec(block);
  return match ? decodeEntities(match[1]!) : undefined;
}

function decodeEntities(text: string): string {
  return text.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e]!,
  );
}

/** Parses `?xml=1`. Its shape is fixed and flat, so a tag scanner is enough; no XML library needed. */
export function parseManagerXml(xml: string): Balancer[] {
  const balancers: Balancer[] = [];
  for (const block of xml.split('<httpd:balancer>').slice(1)) {
    const [head, workersPart = ''] = block.split('<httpd:workers>');
    const workers = workersPart
      .split('<httpd:worker>')
      .slice(1)
      .map((w) => ({
        name: tag(w, 'name') ?? '',
        route: tag(w, 'route') ?? '',
        loadfactor: Number(tag(w, 'loadfactor') ?? '1'),
        status: (tag(w, 'status') ?? '').trim().split(/\s+/).filter(Boolean),
        busy: Number(tag(w, 'busy') ?? '0'),
        elected: Number(tag(w, 'elected') ?? '0'),
      }));
    balancers.push({
      name: (tag(head!, 'name') ?? '').replace(/^balancer:\/\//, ''),
      nonce: tag(head!, 'nonce') ?? '',
      stickysession: tag(head!, 'stickysession') ?? '',
      lbmethod: tag(head!, 'lbmethod') ?? '',
      workers,
    });
  }
  return balancers;
}
