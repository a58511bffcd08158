import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "../runtime/log.ts";
import { authenticate } from "./auth/authenticate.ts";
import { DASHBOARD_HTML } from "./dashboard/page.ts";
import { ApiError } from "./errors.ts";
import { type RateLimiter, rateLimit } from "./rate-limit.ts";
import { type BatchRoutesDeps, batchRoutes } from "./routes/batches.ts";
import { docsRoutes } from "./routes/docs.ts";
import { type JobRoutesDeps, jobRoutes } from "./routes/jobs.ts";
import { keyRoutes } from "./routes/keys.ts";
import { type OpenAIRoutesDeps, openaiRoutes } from "./routes/openai.ts";
import { type OpenAIBatchRoutesDeps, openaiBatchRoutes } from "./routes/openai-batches.ts";
import { type WebhookRoutesDeps, webhookRoutes } from "./routes/webhooks.ts";
import { securityHeaders } from "./security-headers.ts";
import type { KeyStore } from "./stores/api-keys.ts";

export interface AppDeps extends JobRoutesDeps, BatchRoutesDeps, WebhookRoutesDeps, OpenAIRoutesDeps, OpenAIBatchRoutesDeps {
  log: Logger;
  /** Largest request body, in bytes. */
  maxBody: number;
  /** Largest batch request body (POST /v1/batches), in bytes. */
  maxBatchBody: number;
  ready: () => boolean;
  keys: KeyStore;
  /** Per-key request rate; undefined when DOCKET_RATE_LIMIT is 0. */
  rateLimiter?: RateLimiter;
}

/** Routes whose body may be as large as DOCKET_MAX_BATCH_BODY_BYTES. */
const BATCH_BODY_PATHS = ["/v1/batches", "/openai/v1/files"];

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof ApiError) {
      for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
      return c.json(err.toJSON(), err.status);
    }
    deps.log.error({ err: err.message, path: c.req.path }, "unhandled error");
    return c.json(new ApiError("internal", "internal error").toJSON(), 500);
  });
  app.notFound((c) => c.json(new ApiError("not_found", `no route ${c.req.method} ${c.req.path}`).toJSON(), 404));

  // Order: headers on every answer, then who is calling (401/403 before any body is read), their rate, body size.
  app.use("*", securityHeaders([DASHBOARD_HTML]));
  app.use("*", authenticate(deps.keys));
  if (deps.rateLimiter) app.use("*", rateLimit(deps.rateLimiter, deps.keys.enabled));
  const limit = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError("payload_too_large", `request body is larger than ${maxSize} bytes`);
      },
    });
  const bodyLimits = { body: limit(deps.maxBody), batch: limit(deps.maxBatchBody) };
  app.use("*", (c, next) =>
    (c.req.method === "POST" && BATCH_BODY_PATHS.includes(c.req.path) ? bodyLimits.batch : bodyLimits.body)(c, next),
  );

  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/readyz", (c) => (deps.ready() ? c.json({ ready: true }) : c.json({ ready: false }, 503)));
  app.route("/v1/jobs", jobRoutes(deps));
  app.route("/v1/batches", batchRoutes(deps));
  app.route("/v1/jobs", webhookRoutes(deps));
  app.route("/openai/v1", openaiRoutes(deps));
  app.route("/v1/keys", keyRoutes(deps));
  app.route("/openai/v1", openaiBatchRoutes(deps));
  app.route("/", docsRoutes());
  return app;
}
