// The `driver` section: what applies traffic states. The built-in proxy by default, or a load balancer the
// team already runs — Apache httpd through its balancer-manager, HAProxy through its Runtime API.
// Documented in docs/drivers.md.
import { z } from 'zod';
import { address, duration } from './units.js';

const builtinDriverSchema = z.strictObject({
  type: z.literal('builtin'),
});

/**
 * How often Dayshift reads the load balancer's real state and applies its own again where they differ (a
 * restart or reload resets members); also before every release step and after every change.
 */
const verifyInterval = duration.default(10_000).refine((ms) => ms >= 1000, 'verify_interval must be at least 1s');

const httpUrl = z.string().refine((value) => {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, 'expected the balancer-manager URL, such as http://127.0.0.1:8080/balancer-manager');

export const apacheDriverSchema = z.strictObject({
  type: z.literal('apache'),
  /** The balancer-manager handler's URL; user:password@ in it is sent as basic auth. */
  url: httpUrl,
  /** The public balancer's name, without balancer:// (web-prod for <Proxy balancer://web-prod>). */
  balancer: z.string().min(1),
  /**
   * The Host header (and Referer host) of balancer-manager requests: the ServerName of the VirtualHost
   * whose <Location /balancer-manager> sees the balancer, when url's host does not select it.
   */
  host: z
    .string()
    .regex(/^[A-Za-z0-9.:[\]-]+$/, 'expected a host name, such as example.com')
    .optional(),
  /**
   * How Dayshift members are found among the balancer's members: `url` (the member URL equals the
   * BalancerMember URL) or `route` (the member's route equals the BalancerMember's route=).
   */
  match: z.enum(['url', 'route']).default('url'),
  /** `disabled` maps to D (default) or S (stopped, which also stops health checks). */
  disabled_flag: z.enum(['D', 'S']).default('D'),
  /** Time limit of one balancer-manager request. */
  timeout: duration.default(5000),
  verify_interval: verifyInterval,
});
export type ApacheDriverConfig = z.infer<typeof apacheDriverSchema>;

export const haproxyDriverSchema = z
  .strictObject({
    type: z.literal('haproxy'),
    /** The Runtime API socket (`stats socket PATH level admin`), relative to the config file ... */
    socket: z.string().min(1).optional(),
    /** ... or its TCP address (`stats socket ipv4@127.0.0.1:9999 level admin`). */
    address: address.optional(),
    /** The backend that serves the public site. */
    backend: z.string().min(1),
    /**
     * How Dayshift members are found among the backend's servers: `name` (server name = the member's
     * route, else CLUSTER-INDEX, as `dayshift export haproxy` writes them) or `address` (host:port).
     */
    match: z.enum(['name', 'address']).default('name'),
    /**
     * After each change, write `show servers state` here so that a reload keeps it (haproxy.cfg needs
     * `server-state-file` naming this file and `load-server-state-from-file global`).
     */
    state_file: z.string().min(1).optional(),
    /** Time limit of one Runtime API command. */
    timeout: duration.default(5000),
    verify_interval: verifyInterval,
  })
  .refine((d) => (d.socket === undefined) !== (d.address === undefined), {
    message: 'set exactly one of socket (a unix socket path) or address (host:port) for the Runtime API',
  });
export type HaproxyDriverConfig = z.infer<typeof haproxyDriverSchema>;

export const driverSchema = z.discriminatedUnion('type', [
  builtinDriverSchema,
  apacheDriverSchema,
  haproxyDriverSchema,
]);
export type DriverConfig = z.infer<typeof driverSchema>;
