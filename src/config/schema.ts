// The configuration file's schema. Every field is documented here, next to its default, and in
// docs/configuration.md. Parsing turns durations into milliseconds and sizes into bytes.
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { ADMIN_STATES, BALANCE_POLICIES, RETRY_CONDITIONS, TRAFFIC_STATES } from '../model.js';
import { databaseSchema } from './database-schema.js';
import { driverSchema } from './driver-schema.js';
import { checkReleasePlan, httpMethod, releaseSchema } from './release-schema.js';
import { storeSchema } from './store-schema.js';
import { address, duration, size } from './units.js';
import { messageOf } from '../errors.js';

const name = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'expected a name of letters, digits, "-", "_" and "."');

/** An IP address or CIDR block: 10.0.0.0/8, 127.0.0.1, ::1/128. */
export const cidr = z.string().refine((value) => {
  const [ip, bits, extra] = value.split('/');
  if (extra !== undefined || !ip) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
}, 'expected an IP address or CIDR block such as 10.0.0.0/8');

const memberUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return ['http:', 'https:', 'ajp:'].includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}, 'expected a member URL: http://host:port, https://host:port or ajp://host:port');

const statusList = z.array(z.union([z.number().int().min(100).max(599), z.string().regex(/^[1-5]xx$/)]));

export const healthCheck = z.strictObject({
  /** Set false to turn active checks off: members are then up until passive checks say otherwise. */
  enabled: z.boolean().default(true),
  method: z.enum(['GET', 'HEAD', 'OPTIONS']).default('GET'),
  path: z.string().startsWith('/').default('/'),
  /** Host header sent with the check (default: the member's host). */
  host: z.string().optional(),
  interval: duration.default(5000),
  timeout: duration.default(2000),
  /** Consecutive successes before a down member is up again, failures before an up member is down. */
  rise: z.number().int().min(1).default(2),
  fall: z.number().int().min(1).default(3),
  /** Statuses that count as healthy: numbers or classes such as "2xx". */
  expect: statusList.default(['2xx', '3xx']),
});
export type HealthCheckConfig = z.infer<typeof healthCheck>;
const healthOverride = healthCheck.partial();

export const memberSchema = z.strictObject({
  url: memberUrl,
  /** The session route id (Tomcat jvmRoute); also the member's id in CLI and API. */
  route: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'expected a route of letters, digits, "-" and "_"')
    .optional(),
  weight: z.number().int().min(0).max(1000).default(1),
  /** Admin state at first start; the store keeps later changes. */
  state: z.enum(ADMIN_STATES).default('ready'),
  /** AJP shared secret (Tomcat's `secret` on the AJP connector). */
  secret: z.string().optional(),
  /** AJP packet size, as Tomcat's packetSize. */
  packet_size: z.number().int().min(8192).max(65536).default(8192),
  /** For https members: check the member's certificate (default true). */
  tls_verify: z.boolean().default(true),
  /** Open each connection with a PROXY protocol header naming the client (HAProxy send-proxy / send-proxy-v2). */
  proxy_protocol: z.enum(['v1', 'v2']).optional(),
  health: healthOverride.optional(),
});
export type MemberConfig = z.infer<typeof memberSchema>;

export const clusterSchema = z
  .strictObject({
    members: z.array(memberSchema).min(1, 'a cluster needs at least one member'),
    /** Health check overrides for this cluster's members. */
    health: healthOverride.optional(),
    /** Public traffic state at first start and weight among clusters; the store keeps later changes. */
    traffic: z.enum(TRAFFIC_STATES).default('live'),
    weight: z.number().int().min(0).max(1000).default(1),
    /** The URL QA uses to reach this cluster alone (defaults to the first site pinned to it). */
    qa_url: z.string().url().optional(),
    /**
     * Where QA checks connect (host:port), sending qa_url's host as the Host header: the load balancer
     * that serves the QA site, when its name does not resolve to it from here.
     */
    qa_connect: address.optional(),
    /** proxy_protocol for the members that do not set their own. */
    proxy_protocol: z.enum(['v1', 'v2']).optional(),
  })
  // The cluster's proxy_protocol is its members' default: they carry the value in force.
  .transform((c) =>
    c.proxy_protocol === undefined
      ? c
      : { ...c, members: c.members.map((m) => ({ ...m, proxy_protocol: m.proxy_protocol ?? c.proxy_protocol })) },
  );
export type ClusterConfig = z.infer<typeof clusterSchema>;

export const stickySchema = z.strictObject({
  /**
   * `route`: the member is named by the route suffix of an application cookie or path parameter
   * (JSESSIONID=ABC.a1, ;jsessionid=ABC.a1). `cookie`: the proxy sets its own signed cookie.
   */
  mode: z.enum(['route', 'cookie']),
  cookie: z.string().min(1).optional(),
  path_param: z.string().min(1).optional(),
  /** Answer 503 instead of failing over when the bound member cannot serve. */
  nofailover: z.boolean().default(false),
  /** cookie mode: cookie attributes. */
  secure: z.boolean().optional(),
  http_only: z.boolean().default(true),
  same_site: z.enum(['Strict', 'Lax', 'None']).default('Lax'),
  /** cookie mode: the cookie's lifetime; unset means a browser-session cookie. */
  max_age: duration.optional(),
});
export type StickyConfig = z.infer<typeof stickySchema>;

export const routeSchema = z.strictObject({
  /** Path prefix; the longest matching prefix wins. */
  path: z.string().startsWith('/').default('/'),
  clusters: z.array(name).min(1, 'a route needs at least one cluster'),
  balance: z.enum(BALANCE_POLICIES).default('round-robin'),
  sticky: stickySchema.optional(),
  /**
   * `shared`: cluster traffic states (live/draining/out) apply, as on the public site.
   * `pinned`: always this route's clusters, whatever their traffic state, as on a QA site.
   * Default: shared when the route lists several clusters, pinned when it lists one.
   */
  traffic: z.enum(['shared', 'pinned']).optional(),
  /** Strip this prefix before forwarding (ProxyPass /app/ http://member/). */
  strip_prefix: z.boolean().default(false),
});
export type RouteConfig = z.infer<typeof routeSchema>;

/** Whether cluster traffic states apply on a route: `traffic`, else shared with several clusters, pinned with one. */
export function routeTraffic(route: Pick<RouteConfig, 'traffic' | 'clusters'>): 'shared' | 'pinned' {
  return route.traffic ?? (route.clusters.length > 1 ? 'shared' : 'pinned');
}

const tlsSchema = z.strictObject({ cert: z.string(), key: z.string() });
/** A site's certificate: files, or `{acme: true}` to have one issued and renewed (docs/https.md). */
const siteTlsSchema = z.union([tlsSchema, z.strictObject({ acme: z.literal(true) })]);

const acmeSchema = z.strictObject({
  /** The CA's ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  directory: z.string().url(),
  /** Contact address of the ACME account (the CA's expiry and policy notices). */
  email: z.string().email(),
  /** PEM file of extra CAs to trust for the directory's own HTTPS (a private or test CA). */
  ca_file: z.string().optional(),
  /** Renew this long before a certificate expires. */
  renew_before: duration.default(30 * 24 * 3600_000),
});

/** Strict-Transport-Security on a site's HTTPS responses (RFC 6797). */
const hstsSchema = z
  .strictObject({
    /** How long browsers keep to HTTPS for the host (sent in whole seconds). */
    max_age: duration.default(365 * 86_400_000),
    include_subdomains: z.boolean().default(false),
    /** Asks to be put on the browsers' preload list (hstspreload.org: a year or more, and include_subdomains). */
    preload: z.boolean().default(false),
  })
  .superRefine((hsts, ctx) => {
    if (hsts.preload && (!hsts.include_subdomains || hsts.max_age < 365 * 86_400_000)) {
      ctx.addIssue({
        code: 'custom',
        path: ['preload'],
        message:
          'preload needs include_subdomains: true and a max_age of at least 365d (hstspreload.org refuses the host otherwise)',
      });
    }
  });

/** HTTP/2 on the https listeners (docs/https.md#http2). */
const http2Schema = z.strictObject({
  /** Offer h2 by ALPN; HTTP/1.1 stays on the same port for clients that do not ask for h2. */
  enabled: z.boolean().default(true),
  /** Streams in progress at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  max_concurrent_streams: z.number().int().min(1).max(10_000).default(100),
  /** Each stream's initial flow-control window (SETTINGS_INITIAL_WINDOW_SIZE). */
  window_size: size.refine((n) => n <= 2 ** 31 - 1, 'must be at most 2147483647 bytes').default(65_535),
  /** Streams a connection may reset before their answer within 10 s; one more closes it (rapid reset). */
  max_resets: z.number().int().min(1).default(100),
  /** WebSocket over HTTP/2 (RFC 8441's extended CONNECT, SETTINGS_ENABLE_CONNECT_PROTOCOL). */
  websocket: z.boolean().default(true),
});

/** TLS versions as OpenSSL and Node name them. */
const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

/** Protocol, cipher and session settings of the https listeners (docs/https.md#tls-settings). */
const tlsSettingsSchema = z
  .strictObject({
    /** The oldest protocol version accepted. */
    min_version: z.enum(TLS_VERSIONS).default('TLSv1.2'),
    /** OpenSSL cipher list, TLS 1.2 ciphers and TLS 1.3 suites together (default: Node's). */
    ciphers: z.string().min(1).optional(),
    /** Key exchange groups, e.g. "X25519:P-256" (default: OpenSSL's). */
    ecdh_curve: z.string().min(1).optional(),
    /** Session resumption by tickets, with keys shared through the store. */
    session_tickets: z.boolean().default(true),
    /** How often the shared ticket key is replaced. */
    ticket_rotation: duration.refine((ms) => ms >= 60_000, 'must be at least 1m').default(12 * 3_600_000),
  })
  .superRefine((settings, ctx) => {
    // What OpenSSL will take is only known by asking it: the same call the listeners make.
    for (const [key, option] of [
      ['ciphers', 'ciphers'],
      ['ecdh_curve', 'ecdhCurve'],
    ] as const) {
      const value = settings[key];
      if (value === undefined) continue;
      try {
        createSecureContext({ [option]: value, minVersion: settings.min_version });
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `OpenSSL refuses ${JSON.stringify(value)}: ${messageOf(error)}`,
        });
      }
    }
  });
export type TlsSettings = z.infer<typeof tlsSettingsSchema>;

export const siteSchema = z.strictObject({
  /** Host names; `*.example.com` matches one label; `*` alone matches any host no other site names. */
  hosts: z.array(z.string().min(1)).min(1),
  /** Clients allowed (if set, all others get 403) and denied, by address or CIDR. */
  allow: z.array(cidr).optional(),
  deny: z.array(cidr).optional(),
  /** Send the client's Host to members (ProxyPreserveHost On); otherwise the member's host:port. */
  preserve_host: z.boolean().default(false),
  routes: z.array(routeSchema).min(1),
  /** Certificate for this site's hosts on the https listener (chosen by SNI): files, or `{acme: true}`. */
  tls: siteTlsSchema.optional(),
  /**
   * Answer plain HTTP with a 308 to the same URL on HTTPS: `true` (the port of the first https
   * listener) or the port clients reach HTTPS on (behind port forwarding).
   */
  redirect_https: z.union([z.boolean(), z.number().int().min(1).max(65535)]).default(false),
  /** Strict-Transport-Security on the site's HTTPS responses. */
  hsts: hstsSchema.optional(),
  /** Rewrite Set-Cookie Domain and Path from members (ProxyPassReverseCookieDomain/Path). */
  cookie_domain: z.record(z.string(), z.string()).optional(),
  cookie_path: z.record(z.string(), z.string()).optional(),
  /** Files that replace the built-in 502/503/504 pages (HTML). */
  error_pages: z.partialRecord(z.enum(['502', '503', '504']), z.string()).optional(),
});
export type SiteConfig = z.infer<typeof siteSchema>;

/** The certificate files a site names, if it names files (not `acme: true`). */
export function siteTlsFiles(site: SiteConfig): { cert: string; key: string } | undefined {
  return site.tls && 'cert' in site.tls ? site.tls : undefined;
}

/** Whether a site gets its certificate by ACME. */
export function siteUsesAcme(site: SiteConfig): boolean {
  return site.tls !== undefined && 'acme' in site.tls;
}

/**
 * A listener: an address, or `{address, proxy_protocol: true}` for one behind an L4 balancer that opens
 * each connection with a PROXY protocol header (v1 or v2), taken only from trusted_proxies (docs/https.md).
 */
const listener = z.union([
  address,
  z
    .strictObject({ address, proxy_protocol: z.boolean().default(false) })
    .transform(({ address, proxy_protocol }) => ({ ...address, proxy_protocol })),
]);
export type ListenerConfig = z.infer<typeof listener>;

const listenSchema = z.strictObject({
  http: z.union([listener, z.array(listener)]).optional(),
  https: z.union([listener, z.array(listener)]).optional(),
  /** Default certificate on the https listener when no site's certificate matches the SNI name. */
  tls: tlsSchema.optional(),
});

const adminSchema = z.strictObject({
  listen: address.default({ host: '127.0.0.1', port: 9900 }),
  /** File holding the admin bearer token (else DAYSHIFT_TOKEN, else one is generated in state_dir). */
  token_file: z.string().optional(),
  /** Whether /metrics needs the token too. */
  metrics_auth: z.boolean().default(false),
  /**
   * The dashboard's address as people open it (a host name, a proxy in front), for the links in release
   * notifications (default: the listen address).
   */
  public_url: z.string().url().optional(),
});

const timeoutsSchema = z.strictObject({
  connect: duration.default(5000),
  /** From the request sent until the member's whole response head is in (bytes trickling do not extend it). */
  first_byte: duration.default(60_000),
  /** No bytes either way for this long closes the exchange. */
  idle: duration.default(60_000),
  /** Whole request; 0 = no limit (streams and long polls). */
  total: duration.default(0),
  /** How long SIGTERM waits for requests in flight. */
  shutdown: duration.default(30_000),
  /** Keep-alive idle time of client connections. */
  client_keepalive: duration.default(5000),
  /** An open tunnel (WebSocket) with no bytes either way for this long is closed; 0 = never (HAProxy's timeout tunnel). */
  tunnel: duration.default(3_600_000),
  /**
   * How long a request may wait for a member connection past limits.pool_max; then 503 (HAProxy's
   * timeout queue). Default: timeouts.connect, as HAProxy uses timeout connect when timeout queue is unset.
   */
  queue: duration.refine((ms) => ms > 0, 'must be more than 0 (leave it out for timeouts.connect)').optional(),
});

/** limits.response_head's default: HAProxy's whole buffer is 16k, nginx's proxy_buffer_size 4-8k; big CSP and cookie heads fit. */
export const RESPONSE_HEAD_DEFAULT = 64 * 1024;

const limitsSchema = z.strictObject({
  header_size: size.default(16 * 1024),
  /** A member's response head (status line and headers): larger is a 502 and a closed member connection. */
  response_head: size.default(RESPONSE_HEAD_DEFAULT),
  header_count: z.number().int().min(8).default(100),
  /** Idle keep-alive connections kept per member. */
  pool_idle: z.number().int().min(0).default(64),
  /** Connections per member at most (queued beyond, up to `queue`). */
  pool_max: z.number().int().min(1).default(512),
  /**
   * Requests waiting per member for a connection at most (HAProxy's server maxqueue); one more is
   * refused at once: another member is tried, else 503. Bounded, so a stalled member cannot pile up
   * requests (and their sockets) without end.
   */
  queue: z.number().int().min(1).default(1024),
});

const passiveSchema = z.strictObject({
  /** Response statuses that count as a member failure, besides connect errors and timeouts. */
  statuses: z.array(z.number().int().min(500).max(599)).default([]),
  /** Consecutive failures that eject a member. */
  failures: z.number().int().min(1).default(3),
  /** First ejection time; doubles on each consecutive ejection, up to max_ejection. */
  ejection: duration.default(5000),
  max_ejection: duration.default(120_000),
});

/**
 * Client-address headers Dayshift writes besides X-Forwarded-For/-Proto/-Host. Off: a client's own copy
 * is removed (kept only from trusted_proxies). On: Dayshift writes its own, appended to a trusted one.
 */
const forwardHeadersSchema = z.strictObject({
  /** RFC 7239 `Forwarded: for=…;proto=…;host=…` (HAProxy `option forwarded`). */
  forwarded: z.boolean().default(false),
  /** `X-Real-IP: <client address>` (nginx `proxy_set_header X-Real-IP $remote_addr`). */
  x_real_ip: z.boolean().default(false),
});
export type ForwardHeadersConfig = z.infer<typeof forwardHeadersSchema>;

const retriesSchema = z.strictObject({
  /** Attempts in total for a request (first try included). */
  attempts: z.number().int().min(1).max(10).default(3),
  /**
   * Failures worth another member (HAProxy `retry-on`): `conn-failure` (any method), and for idempotent
   * methods only `empty-response`, `junk-response`, `response-timeout`. A first-byte timeout is not
   * retried by default: the request may be running, and a hung member would cost attempts × first_byte.
   */
  on: z.array(z.enum(RETRY_CONDITIONS)).default(['conn-failure', 'empty-response']),
  /**
   * All attempts of one request together, until response headers (nginx `proxy_next_upstream_timeout`):
   * no attempt starts past it, and the one running is cut (504). Default: timeouts.connect + first_byte.
   */
  budget: duration.refine((ms) => ms > 0, 'must be more than 0 (leave it out for connect + first_byte)').optional(),
});

const drainNoticeSchema = z.strictObject({
  enabled: z.boolean().default(false),
  header: z.string().default('Dayshift-Draining'),
  /** Banner text; {minutes} is replaced by the minutes left until the drain deadline. */
  banner: z.string().default("We're updating this site — please finish what you are doing within {minutes} minutes."),
});

const drainSchema = z.strictObject({
  /** A bound session not seen for this long no longer holds a drain. */
  session_idle: duration.default(5 * 60_000),
  /** A drain is complete at this point whatever is left. */
  deadline: duration.default(30 * 60_000),
  /** Sessions tracked at most (least recently seen evicted first). */
  max_sessions: z.number().int().min(100).default(200_000),
  notice: drainNoticeSchema.prefault({}),
});

/** `site:NAME` in preview.allow: the clients that site's `allow` list admits. */
export const SITE_ALLOW_PREFIX = 'site:';

const previewSchema = z.strictObject({
  /** How long a preview lasts when `dayshift preview` is given no --for. */
  for: duration.default(3600_000),
  /**
   * Who may open previews: addresses, CIDR blocks, or `site:NAME` for the clients that site's `allow`
   * admits (an internal QA site's). Unset: anyone with the link. A preview may name its own list.
   */
  allow: z.array(z.union([cidr, z.string().regex(/^site:[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)])).optional(),
});

const shadowSchema = z.strictObject({
  /** Methods copied when `dayshift shadow` or the release's shadow step names none. */
  methods: z.array(httpMethod).min(1).default(['GET', 'HEAD']),
  /** How long a shadow lasts when `dayshift shadow` is given no --for. */
  for: duration.default(5 * 60_000),
  /** Copies waiting for a slot at most; past it, copies are dropped and counted. */
  queue: z.number().int().min(0).default(1000),
  /** Copies in flight at once at most, per instance. */
  concurrency: z.number().int().min(1).default(32),
  /** Time limit of one copy, to its last response byte. */
  timeout: duration.refine((ms) => ms > 0, 'expected a duration above 0').default(10_000),
  /** The request header that marks a copy (value `1`), for the application to recognise it. */
  header: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name')
    .default('Dayshift-Shadow'),
});

const accessLogSchema = z.strictObject({
  /** "stdout", "off" or a file path. */
  target: z.string().default('off'),
  format: z.enum(['combined', 'json']).default('combined'),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** auto: pretty on a terminal, JSON otherwise. */
  format: z.enum(['auto', 'json', 'pretty']).default('auto'),
});

export const configSchema = z
  .strictObject({
    listen: listenSchema.prefault({}),
    admin: adminSchema.prefault({}),
    /**
     * Processes that serve the proxy listeners: 1 (default) serves them in the one process beside the
     * control plane; N >= 2 starts N workers under a main process that keeps the control plane; `auto`
     * one per core (docs/operations.md, Sizing workers).
     */
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
    /** Where the embedded store, the admin token and the audit log live (relative to the config file). */
    state_dir: z.string().default('.dayshift'),
    /** Where desired state lives: `{type: file}` (default, in state_dir) or `{type: etcd, ...}` shared by several instances. */
    store: storeSchema.optional(),
    clusters: z.record(name, clusterSchema),
    health: healthCheck.prefault({}),
    passive: passiveSchema.prefault({}),
    retries: retriesSchema.prefault({}),
    timeouts: timeoutsSchema.prefault({}),
    limits: limitsSchema.prefault({}),
    /** Proxies whose X-Forwarded-*, Forwarded and X-Real-IP headers are believed. */
    trusted_proxies: z.array(cidr).default([]),
    forward_headers: forwardHeadersSchema.prefault({}),
    /** Header carrying the request id; a valid incoming one is kept. */
    request_id_header: z.string().default('X-Request-Id'),
    /** Secret for signing sticky cookies (cookie mode); generated into state_dir if unset. */
    cookie_secret: z.string().min(16).optional(),
    drain: drainSchema.prefault({}),
    /** Preview links that pin a browser to one cluster on the public site (docs/releases.md, Previews). */
    preview: previewSchema.prefault({}),
    /** Shadow traffic: copies of live requests sent to a cluster out of traffic (docs/releases.md, Shadow traffic). */
    shadow: shadowSchema.prefault({}),
    access_log: accessLogSchema.prefault({}),
    log: logSchema.prefault({}),
    sites: z.record(name, siteSchema),
    /** What applies traffic states: the built-in proxy (default), Apache httpd or HAProxy (docs/drivers.md). */
    driver: driverSchema.optional(),
    /** MySQL/MariaDB servers for `dayshift db` (docs/database.md). */
    database: databaseSchema.optional(),
    /** The release plan (docs/releases.md). */
    release: releaseSchema.optional(),
    /** The ACME CA that issues certificates to sites with `tls: {acme: true}` (docs/https.md). */
    acme: acmeSchema.optional(),
    /** Protocol versions, ciphers and session resumption on the https listeners (docs/https.md). */
    tls: tlsSettingsSchema.prefault({}),
    /** HTTP/2 beside HTTP/1.1 on the https listeners (docs/https.md). */
    http2: http2Schema.prefault({}),
  })
  .superRefine((config, ctx) => {
    for (const [siteName, site] of Object.entries(config.sites)) {
      site.routes.forEach((route, i) => {
        route.clusters.forEach((cluster, j) => {
          if (!Object.hasOwn(config.clusters, cluster)) {
            ctx.addIssue({
              code: 'custom',
              path: ['sites', siteName, 'routes', i, 'clusters', j],
              message: `unknown cluster "${cluster}"; defined clusters: ${Object.keys(config.clusters).join(', ')}`,
            });
          }
        });
      });
    }
    const hostOwners = new Map<string, string>();
    for (const [siteName, site] of Object.entries(config.sites)) {
      site.hosts.forEach((host, i) => {
        const key = host.toLowerCase();
        const owner = hostOwners.get(key);
        if (owner !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['sites', siteName, 'hosts', i],
            message: `host "${host}" is already served by site "${owner}"`,
          });
        }
        hostOwners.set(key, siteName);
      });
    }
    for (const [clusterName, cluster] of Object.entries(config.clusters)) {
      const ids = new Set<string>();
      cluster.members.forEach((member, i) => {
        const id = member.route ?? String(i + 1);
        if (ids.has(id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['clusters', clusterName, 'members', i, 'route'],
            message: `member id "${id}" is used twice in cluster ${clusterName}`,
          });
        }
        ids.add(id);
        if (member.proxy_protocol !== undefined && member.url.startsWith('ajp:')) {
          ctx.addIssue({
            code: 'custom',
            path: ['clusters', clusterName, 'members', i, 'proxy_protocol'],
            message:
              'proxy_protocol is for http and https members: AJP carries the client address in its own request (remote_addr)',
          });
        }
      });
    }
    config.preview.allow?.forEach((entry, i) => {
      if (!entry.startsWith(SITE_ALLOW_PREFIX)) return;
      const site = config.sites[entry.slice(SITE_ALLOW_PREFIX.length)];
      if (!site?.allow?.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['preview', 'allow', i],
          message: `"${entry}" names no site with an allow list; sites with one: ${
            Object.entries(config.sites)
              .filter(([, s]) => s.allow?.length)
              .map(([n]) => n)
              .join(', ') || 'none'
          }`,
        });
      }
    });
    checkReleasePlan(
      config.release,
      Object.keys(config.clusters),
      config.database?.servers.map((s) => s.name),
      ctx,
    );
    for (const [siteName, site] of Object.entries(config.sites)) {
      if (!siteUsesAcme(site)) continue;
      if ((config.driver?.type ?? 'builtin') !== 'builtin')
        ctx.addIssue({
          code: 'custom',
          path: ['sites', siteName, 'tls', 'acme'],
          message: `tls.acme needs the built-in proxy: with driver ${config.driver?.type}, give the site tls: { cert, key } files`,
        });
      if (!config.acme)
        ctx.addIssue({
          code: 'custom',
          path: ['sites', siteName, 'tls', 'acme'],
          message:
            'tls.acme needs the top-level acme section: acme: { directory: <ACME directory URL>, email: <contact> }',
        });
      site.hosts.forEach((host, i) => {
        if (host.includes('*')) {
          ctx.addIssue({
            code: 'custom',
            path: ['sites', siteName, 'hosts', i],
            message: `host "${host}" cannot get a certificate by ACME (wildcards need the dns-01 challenge, which Dayshift does not answer): name the hosts exactly, or give this site tls: { cert, key } files`,
          });
        }
      });
    }
    for (const key of ['http', 'https'] as const) {
      const listeners = config.listen[key];
      [listeners ?? []].flat().forEach((l, i) => {
        if (!('proxy_protocol' in l) || !l.proxy_protocol || config.trusted_proxies.length > 0) return;
        const path = Array.isArray(listeners)
          ? ['listen', key, i, 'proxy_protocol']
          : ['listen', key, 'proxy_protocol'];
        ctx.addIssue({
          code: 'custom',
          path,
          message:
            'proxy_protocol takes the PROXY header only from trusted_proxies, which is empty: every connection would be refused; list the balancers in trusted_proxies',
        });
      });
    }
    for (const [siteName, site] of Object.entries(config.sites)) {
      for (const key of ['redirect_https', 'hsts'] as const) {
        if (!site[key]) continue;
        if ((config.driver?.type ?? 'builtin') !== 'builtin')
          ctx.addIssue({
            code: 'custom',
            path: ['sites', siteName, key],
            message: `${key} needs the built-in proxy: with driver ${config.driver?.type}, set it in ${config.driver?.type}'s own configuration`,
          });
      }
      if (
        site.redirect_https === true &&
        config.listen.https === undefined &&
        (config.driver?.type ?? 'builtin') === 'builtin'
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', siteName, 'redirect_https'],
          message:
            'redirect_https: true needs an https listener (listen.https), or the port clients reach HTTPS on: redirect_https: 443',
        });
      } else if (site.redirect_https === true && [config.listen.https ?? []].flat()[0]?.port === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', siteName, 'redirect_https'],
          message:
            'redirect_https: true takes the port of the first listen.https address, which is 0 (any): give the port clients reach HTTPS on, e.g. redirect_https: 443',
        });
      }
    }
    // With Apache or HAProxy driven, Dayshift serves no traffic: its own listeners are optional.
    if (
      config.listen.http === undefined &&
      config.listen.https === undefined &&
      (config.driver?.type ?? 'builtin') === 'builtin'
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: 'expected at least one listener: listen.http or listen.https',
      });
    }
  });

export type DayshiftConfig = z.infer<typeof configSchema>;
