// The `database` section: the MySQL/MariaDB servers of one replication pair (or chain), the writer
// endpoint that database clients connect to, and the switchover's safety bounds. Documented in
// docs/database.md.
import { z } from 'zod';
import { address, duration } from './units.js';

const credentials = {
  user: z.string().min(1),
  /** Inline password; prefer password_file (read relative to the config file). */
  password: z.string().optional(),
  password_file: z.string().optional(),
};

const onePassword = (value: { password?: string | undefined; password_file?: string | undefined }) =>
  !(value.password !== undefined && value.password_file !== undefined);
const onePasswordMessage = { message: 'set password or password_file, not both' };

export const dbServerSchema = z
  .strictObject({
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'expected a name of letters, digits, "-", "_" and "."'),
    /** Address the tool connects to, and that the other servers replicate from. */
    host: z.string().regex(/^[a-zA-Z0-9_.:-]+$/, 'expected a host name or IP address'),
    port: z.number().int().min(1).max(65535).default(3306),
    /** The switchover account (grants in docs/database.md). */
    ...credentials,
  })
  .refine(onePassword, onePasswordMessage);
export type DbServerConfig = z.infer<typeof dbServerSchema>;

const writerSchema = z.strictObject({
  /** Where `dayshift db front` listens for database clients (the writer endpoint). */
  listen: address.optional(),
  /**
   * Address that reaches the current primary through whatever endpoint is used (default: listen, with
   * 0.0.0.0/:: read as loopback). The switchover connects through it to verify the flip.
   */
  verify: address.optional(),
  /**
   * `dayshift db front` opens each connection to the primary with a PROXY protocol header (v1 or v2), so
   * the server sees clients' own addresses (MariaDB: proxy_protocol_networks naming the front's address).
   */
  proxy_protocol: z.enum(['v1', 'v2']).optional(),
  /** How long the verification may take (a front notices the change within ~100 ms). */
  verify_timeout: duration.default(5000),
  /**
   * Shell command run after promotion to move other endpoints (DNS, ProxySQL, a VIP). It gets
   * DAYSHIFT_DB_NEW_PRIMARY(_HOST/_PORT) and DAYSHIFT_DB_OLD_PRIMARY(_HOST/_PORT); non-zero exit = failed.
   */
  hook: z.string().min(1).optional(),
  hook_timeout: duration.default(30_000),
});

export const databaseSchema = z
  .strictObject({
    servers: z.array(dbServerSchema).min(2, 'a switchover needs at least two servers'),
    /** The account replicas use to connect to their primary (CHANGE MASTER ... MASTER_USER). */
    replication: z.strictObject(credentials).refine(onePassword, onePasswordMessage),
    writer: writerSchema.prefault({}),
    /** Preflight: replica lag (Seconds_Behind_Master) allowed at most. */
    max_lag: duration.default(5000),
    /** Preflight: a transaction or statement on the primary older than this refuses the switchover. */
    long_transaction: duration.default(10_000),
    /** Fence: lock_wait_timeout for SET GLOBAL read_only (it waits behind running writes). */
    lock_wait: duration.default(2000),
    /**
     * Fence: `read_only` (MySQL: super_read_only), or `ftwrl` to also hold FLUSH TABLES WITH READ LOCK
     * from the kill until re-attaching, which stops accounts that write through read_only (MariaDB
     * READ_ONLY ADMIN) too.
     */
    fence: z.enum(['read_only', 'ftwrl']).default('read_only'),
    /** Fence: how long open transactions may finish before every client session is killed. */
    drain: duration.default(2000),
    /** How long the new primary may take to apply everything the old one wrote. */
    catchup: duration.default(10_000),
    connect_timeout: duration.default(5000),
    /** Client-side limit for any single statement other than the waits above. */
    statement_timeout: duration.default(30_000),
  })
  .superRefine((db, ctx) => {
    const seen = new Set<string>();
    db.servers.forEach((server, i) => {
      if (seen.has(server.name))
        ctx.addIssue({
          code: 'custom',
          path: ['servers', i, 'name'],
          message: `server name "${server.name}" is used twice`,
        });
      seen.add(server.name);
    });
  });
export type DatabaseConfig = z.infer<typeof databaseSchema>;
