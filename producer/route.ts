import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type Access, authenticate } from "./auth/authenticate.ts";
import type { DashboardSessions } from "./auth/session.ts";
import { ApiError } from "./errors.ts";
import { bodyMediaTypes, requireMediaType } from "./media-type.ts";
import type { OperationDoc } from "./openapi.ts";
import { checkHost, checkOrigin, type OriginPolicy } from "./origin-policy.ts";
import { type RateLimiter, rateLimit } from "./rate-limit.ts";
import type { KeyStore } from "./stores/api-keys.ts";

/**
 * Largest request body a route reads: `document` (DOCKET_MAX_DOCUMENT_BYTES + 64 KiB, every route unless it
 * says otherwise) or `batch` (DOCKET_MAX_BATCH_BODY_BYTES: batch submissions and file uploads).
 */
export type BodySize = "document" | "batch";

/**
 * One route, declared once: method, path, who may call it, how large a body it reads, its OpenAPI entry
 * and its handler. The app registers it with its guards (mountRoutes) and /openapi.json documents it
 * (openApiDocument) from this one object, so the two cannot drift. `D` is what the handler needs.
 */
export interface Route<D> extends OperationDoc {
  method: "get" | "post" | "patch" | "delete";
  /** Full path, parameters in braces as OpenAPI writes them: /v1/jobs/{id}. */
  path: string;
  access: Access;
  /** @default "document" */
  bodySize?: BodySize;
  /** One of the dashboard's GET routes: the dashboard's session cookie is accepted besides a key. */
  browser?: boolean;
  handler: (c: Context, deps: D) => Response | Promise<Response>;
}

/** A path parameter of the matched route ("" when absent, which no route allows). */
export const pathParam = (c: Context, name: string): string => c.req.param(name) ?? "";

/** /v1/jobs/{id} → /v1/jobs/:id */
const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ":$1");

export interface Guards {
  keys: KeyStore;
  /** Per-key request rate; undefined when DOCKET_RATE_LIMIT is 0. */
  rateLimiter?: RateLimiter;
  /** Bytes for each body size. */
  bodyLimits: Record<BodySize, number>;
  /** Which Host and Origin headers are this server's. */
  origins: OriginPolicy;
  /** The dashboard's sign-in, which `browser` routes accept besides a key. */
  sessions: DashboardSessions;
}

/** What of a route its guards need. */
type Guarded = Pick<Route<unknown>, "method" | "access" | "bodySize" | "browser" | "body">;

/**
 * The middleware a route runs before its handler, in this order:
 * 1. where the request comes from: on a request that changes something, its Origin (403 `origin_not_allowed`);
 *    the Host (403 `host_not_allowed`; not on open GET routes, which probes and API-doc readers call by any
 *    name and which tell a rebinding page nothing);
 * 2. who is calling (401/403 before any body is read), and their rate (open routes are not counted);
 * 3. the body: its Content-Type is one the route declares (415 `unsupported_media_type`), its size (413).
 */
export function guards(g: Guards, r: Guarded): [MiddlewareHandler, ...MiddlewareHandler[]] {
  const maxSize = g.bodyLimits[r.bodySize ?? "document"];
  const types = bodyMediaTypes(r.body);
  return [
    checkOrigin(g.origins),
    ...(r.access === "open" && r.method === "get" ? [] : [checkHost(g.origins)]),
    authenticate(g.keys, r.access, r.browser ? { sessions: g.sessions } : undefined),
    ...(g.rateLimiter && r.access !== "open" ? [rateLimit(g.rateLimiter, g.keys.enabled)] : []),
    ...(types ? [requireMediaType(types)] : []),
    bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError("payload_too_large", `request body is larger than ${maxSize} bytes`);
      },
    }),
  ];
}

/** Registers each route on `app` behind its guards; its handler gets `deps`. */
export function mountRoutes<D>(app: Hono, routes: readonly Route<D>[], deps: D, g: Guards): void {
  for (const r of routes) {
    const chain: [MiddlewareHandler, ...MiddlewareHandler[]] = [...guards(g, r), async (c) => r.handler(c, deps)];
    app.on(r.method.toUpperCase(), honoPath(r.path), ...chain);
  }
}

/**
 * Answers what no route matched with 404 `not_found`, behind the guards of a `key` route: a path that
 * does not exist still needs a key (nothing is told about routes to an anonymous caller) and its body
 * is still bounded. Register it after every route.
 */
export function mountNotFound(app: Hono, g: Guards): void {
  const chain: [MiddlewareHandler, ...MiddlewareHandler[]] = [
    ...guards(g, { method: "get", access: "key" }),
    async (c) => {
      throw new ApiError("not_found", `no route ${c.req.method} ${c.req.path}`);
    },
  ];
  app.all("*", ...chain);
}
