// Where desired state and the release journal live: the embedded file store (one machine, the default)
// or etcd (several Dayshift instances sharing state). See docs/multi-instance.md.
import { z } from 'zod';
import { duration } from './units.js';

const endpoint = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.port !== '';
  } catch {
    return false;
  }
}, 'expected an etcd client URL with a port: http://host:2379 or https://host:2379');

const fileStoreSchema = z.strictObject({
  type: z.literal('file'),
});

const etcdStoreSchema = z
  .strictObject({
    type: z.literal('etcd'),
    /** Client URLs of the etcd members (all http:// or all https://). */
    endpoints: z.array(endpoint).min(1, 'expected at least one etcd endpoint'),
    /** Key prefix of this installation; instances that share state use the same prefix. */
    prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9_./-]*$/, 'expected a key prefix such as /dayshift/prod/')
      .default('/dayshift/default/'),
    /** PEM files: `ca` verifies etcd's certificate; `cert` and `key` authenticate this client. */
    tls: z
      .strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })
      .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), 'tls.cert and tls.key go together')
      .optional(),
    /** etcd user (etcd's own authentication, `etcdctl auth enable`). */
    auth: z.strictObject({ username: z.string().min(1), password: z.string() }).optional(),
    /** How long start-up waits for a first answer from etcd. */
    dial_timeout: duration.default(5000),
    /** Deadline of each try of a call to etcd; with two retries on other endpoints, a call fails with a clear error after at most about 3× this. */
    request_timeout: duration.default(2000),
    /**
     * TTL of the leases behind published live figures and the release lock: how long a dead instance
     * keeps showing (and holding the lock). Default: what each caller asks for (10 s for live figures).
     */
    lease_ttl: duration.optional(),
  })
  .superRefine((store, ctx) => {
    const secure = store.endpoints.filter((e) => e.startsWith('https:')).length;
    if (secure !== 0 && secure !== store.endpoints.length) {
      ctx.addIssue({ code: 'custom', path: ['endpoints'], message: 'endpoints must be all http:// or all https://' });
    }
    if (store.tls !== undefined && secure === 0) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls needs https:// endpoints' });
    }
    if (store.lease_ttl !== undefined && store.lease_ttl < 1000) {
      ctx.addIssue({ code: 'custom', path: ['lease_ttl'], message: 'lease_ttl must be at least 1s' });
    }
  });

export const storeSchema = z.discriminatedUnion('type', [fileStoreSchema, etcdStoreSchema]);
export type StoreConfig = z.infer<typeof storeSchema>;
export type EtcdStoreConfig = z.infer<typeof etcdStoreSchema>;
