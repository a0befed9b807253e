// The demo application: a small shop whose checkout takes several steps (cart → address → payment →
// done) and keeps its state in server memory, under a JSESSIONID cookie with the member's route as
// suffix, as Tomcat does. A request that reaches a member that does not know its session is answered
// 409 "session lost": exactly what a careless release does to users. Every page says which cluster,
// member and version served it.
//
// Versions ending in "-broken" answer 500 on every page (for canary rollbacks); versions ending in
// "-unhealthy" fail /health (for health gates). POST /_demo/deploy restarts the member with a new
// version, as a deploy would; it needs the demo's control token.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface DemoAppOptions {
  cluster: string;
  /** The member's route: the JSESSIONID suffix the proxy routes on. */
  member: string;
  version: string;
  host?: string;
  port?: number;
  /** Token for POST /_demo/deploy; unset disables it. */
  controlToken?: string;
  /** How long a deploy keeps the member down. */
  restartMs?: number;
}

type Step = 'cart' | 'address' | 'payment' | 'done';

interface Session {
  step: Step;
  items: number;
  address?: string;
}

export const SESSION_COOKIE = 'JSESSIONID';

export class DemoApp {
  version: string;
  port = 0;
  /** Requests served since start, all versions. */
  requests = 0;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private sessions = new Map<string, Session>();
  private restarting: Promise<void> | undefined;

  constructor(readonly options: DemoAppOptions) {
    this.version = options.version;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.listen(this.options.port ?? this.port, this.options.host ?? '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops like a process that exits: idle keep-alive connections closed, requests in flight finished. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = once(server, 'close');
    server.close();
    server.closeIdleConnections();
    const force = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, 2000);
    await closed;
    clearTimeout(force);
  }

  /** A deploy: the member goes down, loses its in-memory sessions, and comes back with the new version. */
  async deploy(version: string): Promise<void> {
    await this.restarting;
    this.restarting = (async () => {
      await this.close();
      this.sessions = new Map();
      await new Promise((r) => setTimeout(r, this.options.restartMs ?? 500));
      this.version = version;
      await this.start();
    })();
    await this.restarting;
    this.restarting = undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    const url = new URL(req.url ?? '/', 'http://demo');
    const headers = {
      'x-demo-cluster': this.options.cluster,
      'x-demo-member': this.options.member,
      'x-demo-version': this.version,
      'cache-control': 'no-store',
    };
    const send = (
      status: number,
      body: string,
      extra: Record<string, string> = {},
      type = 'text/html; charset=utf-8',
    ) => {
      res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
      res.end(body);
    };
    if (url.pathname === '/health') {
      const healthy = !this.version.endsWith('-unhealthy');
      return send(healthy ? 200 : 503, `${healthy ? 'ok' : 'unhealthy'} ${this.version}\n`, {}, 'text/plain');
    }
    if (url.pathname === '/_demo/deploy' && req.method === 'POST') return this.controlDeploy(req, res, url, send);
    if (this.version.endsWith('-broken'))
      return send(500, page(this, 'Error', '<p>This version is broken: every page fails.</p>'));

    const cookie = sessionCookie(req.headers.cookie);
    const session = cookie ? this.sessions.get(cookie) : undefined;
    const lost = () =>
      send(
        409,
        page(
          this,
          'Session lost',
          `<p>This server does not know your session${cookie ? ` <code>${escape(cookie)}</code>` : ''}: your checkout is gone. <a href="/cart">Start again</a>.</p>`,
        ),
      );
    readBody(req, (body) => {
      const form = new URLSearchParams(body);
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /':
          return send(
            200,
            page(
              this,
              'Dayshift demo shop',
              '<p>A checkout in four steps. Every page says who served it.</p><p><a href="/cart">Start a checkout</a></p>',
            ),
          );
        case 'GET /cart': {
          let id = cookie && session ? cookie : undefined;
          if (!id) {
            id = `${randomBytes(12).toString('hex').toUpperCase()}.${this.options.member}`;
            this.sessions.set(id, { step: 'cart', items: 1 });
          }
          const s = this.sessions.get(id)!;
          if (s.step === 'done') Object.assign(s, { step: 'cart', items: 1 });
          return send(
            200,
            page(
              this,
              'Cart',
              `<p>${s.items} item(s) in your cart.</p>${formHtml('/address', 'Address', '<input name="address" value="1 Main Street">')}`,
            ),
            {
              'set-cookie': `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`,
            },
          );
        }
        case 'POST /address':
          if (!session || session.step !== 'cart') return lost();
          session.step = 'address';
          session.address = form.get('address') ?? '';
          return send(
            200,
            page(
              this,
              'Address',
              `<p>Shipping to ${escape(session.address)}.</p>${formHtml('/payment', 'Pay', '<input name="card" value="4242 4242 4242 4242">')}`,
            ),
          );
        case 'POST /payment':
          if (!session || session.step !== 'address') return lost();
          session.step = 'payment';
          return send(200, page(this, 'Payment', `<p>Payment accepted.</p><p><a href="/done">Finish</a></p>`));
        case 'GET /done':
          if (!session || session.step !== 'payment') return lost();
          session.step = 'done';
          return send(
            200,
            page(
              this,
              'Thank you',
              `<p>Order placed: ${session.items} item(s) to ${escape(session.address ?? '')}.</p><p><a href="/cart">Another checkout</a></p>`,
            ),
          );
        default:
          return send(404, page(this, 'Not found', '<p>No such page.</p>'));
      }
    });
  }

  private controlDeploy(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    send: (status: number, body: string, extra?: Record<string, string>, type?: string) => void,
  ): void {
    const token = this.options.controlToken;
    const given = Buffer.from(String(req.headers['x-demo-token'] ?? ''));
    if (!token || given.length !== Buffer.byteLength(token) || !timingSafeEqual(given, Buffer.from(token))) {
      return send(403, 'forbidden\n', {}, 'text/plain');
    }
    const version = url.searchParams.get('version');
    if (!version) return send(400, 'version missing\n', {}, 'text/plain');
    // Restart once the answer is out, so that the deploy command gets it.
    res.once('finish', () => void this.deploy(version));
    send(202, `restarting with ${version}\n`, { connection: 'close' }, 'text/plain');
  }
}

function readBody(req: http.IncomingMessage, then: (body: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => then(Buffer.concat(chunks).toString('utf8')));
}

export function sessionCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=');
  }
  return undefined;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formHtml(action: string, label: string, fields: string): string {
  return `<form method="post" action="${action}">${fields} <button>${label}</button></form>`;
}

function page(app: DemoApp, title: string, body: string): string {
  const o = app.options;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title} · demo shop</title>
<style>body{font:16px system-ui,sans-serif;max-width:40em;margin:2em auto}.served{color:#555;border-top:1px solid #ccc;padding-top:.5em}</style></head>
<body><h1>${title}</h1>${body}<p class="served">served by cluster <b>${o.cluster}</b> · member <b>${o.member}</b> · version <b>${escape(app.version)}</b></p></body></html>\n`;
}
