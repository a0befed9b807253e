// A small JSON router for the admin listener. Routes carry their zod schemas, which both validate
// requests and generate the OpenAPI document, so the two cannot drift apart.
import { escapeRegex } from '../regex.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Actor } from '../control/audit.js';
import { DayshiftError } from '../errors.js';
import { ReleaseRefusedError } from '../release/errors.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The status the API answers for each of Dayshift's error codes; the CLI turns statuses into exit codes. */
const STATUS_OF_CODE: Readonly<Partial<Record<string, number>>> = {
  DAYSHIFT_UNKNOWN_TARGET: 404,
  DAYSHIFT_REFUSED: 409,
  DAYSHIFT_SHADOW_REFUSED: 422,
  DAYSHIFT_DRIVER_UNSUPPORTED: 501,
  DAYSHIFT_STORE_UNAVAILABLE: 503,
  DAYSHIFT_UPGRADE_REFUSED: 409,
  DAYSHIFT_UPGRADE_FAILED: 502,
};

/** The one place an error becomes an HTTP status: by class for those that carry one, else by code; 500 for the rest. */
export function statusOf(err: unknown): number {
  if (err instanceof HttpError || err instanceof ReleaseRefusedError) return err.status;
  if (err instanceof DayshiftError) return STATUS_OF_CODE[err.code] ?? 500;
  return typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
}

export interface RequestContext<B> {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  body: B;
  actor: Actor;
}

/** A handler returns a JSON-able value, or undefined when it wrote the response itself (SSE, files). */
export type Handler<B> = (ctx: RequestContext<B>) => Promise<unknown> | unknown;

export interface RouteSpec<S extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path with :params, e.g. /api/clusters/:cluster/traffic */
  path: string;
  summary: string;
  body?: S;
  /** Query parameters, for the OpenAPI document. */
  query?: Record<string, string>;
  /** False for routes that need no token (healthz, sign-in). */
  auth?: boolean;
  /** Describes the success response for the OpenAPI document. */
  response?: string;
  tag?: string;
}

interface Route {
  spec: RouteSpec;
  pattern: RegExp;
  names: string[];
  handler: Handler<unknown>;
}

const MAX_BODY = 1024 * 1024;

export class Router {
  private readonly routes: Route[] = [];

  add<S extends z.ZodType>(spec: RouteSpec<S>, handler: Handler<z.infer<S>>): void {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${escapeRegex(spec.path).replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
        names.push(name);
        return '([^/]+)';
      })}$`,
    );
    this.routes.push({ spec, pattern, names, handler: handler as Handler<unknown> });
  }

  /** Finds the route for a request: undefined (404), 'method' (405), or the route and its params. */
  match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    let methodMismatch = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      if (route.spec.method !== method && !(method === 'HEAD' && route.spec.method === 'GET')) {
        methodMismatch = true;
        continue;
      }
      const params: Record<string, string> = {};
      try {
        route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
      } catch {
        throw new HttpError(400, `bad percent-encoding in ${path}`);
      }
      return { route, params };
    }
    return methodMismatch ? 'method' : undefined;
  }

  async run(route: Route, ctx: Omit<RequestContext<unknown>, 'body'>): Promise<unknown> {
    let body: unknown = undefined;
    if (route.spec.body) {
      const text = await readBody(ctx.req);
      let parsed: unknown = {};
      if (text.trim() !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'request body is not valid JSON');
        }
      }
      const result = route.spec.body.safeParse(parsed);
      if (!result.success) {
        const problems = result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
        throw new HttpError(400, `invalid request: ${problems.join('; ')}`, problems);
      }
      body = result.data;
    }
    return route.handler({ ...ctx, body });
  }

  requiresAuth(route: Route): boolean {
    return route.spec.auth !== false;
  }

  openapi(info: { title: string; version: string }): unknown {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { spec } of this.routes) {
      const path = spec.path.replace(/:([a-zA-Z]+)/g, '{$1}');
      const params = [...spec.path.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      const query = Object.entries(spec.query ?? {}).map(([name, description]) => ({
        name,
        in: 'query',
        required: false,
        description,
        schema: { type: 'string' },
      }));
      (paths[path] ??= {})[spec.method.toLowerCase()] = {
        summary: spec.summary,
        ...(spec.tag ? { tags: [spec.tag] } : {}),
        ...(params.length + query.length ? { parameters: [...params, ...query] } : {}),
        ...(spec.body
          ? {
              requestBody: {
                required: true,
                content: { 'application/json': { schema: z.toJSONSchema(spec.body, { io: 'input' }) } },
              },
            }
          : {}),
        responses: {
          '200': { description: spec.response ?? 'OK' },
          ...(spec.body ? { '400': { description: 'Invalid request' } } : {}),
          ...(spec.auth === false ? {} : { '401': { description: 'Missing or wrong token' } }),
        },
        ...(spec.auth === false ? { security: [] } : {}),
      };
    }
    return {
      openapi: '3.0.3',
      info,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      paths,
    };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
