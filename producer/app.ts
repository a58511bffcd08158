import { Hono } from "hono";
import type { Logger } from "../runtime/log.ts";
import { DASHBOARD_HTML } from "./dashboard/page.ts";
import { ApiError } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import type { OriginPolicy } from "./origin-policy.ts";
import type { RateLimiter } from "./rate-limit.ts";
import { type Guards, mountNotFound, mountRoutes, type Route } from "./route.ts";
import { type BatchRoutesDeps, batchRoutes } from "./routes/batches.ts";
import { type DashboardRoutesDeps, dashboardRoutes } from "./routes/dashboard.ts";
import { apiDocs, type DocsRoutesDeps, docsRoutes } from "./routes/docs.ts";
import { type DocumentRoutesDeps, documentRoutes } from "./routes/documents.ts";
import { type HealthRoutesDeps, healthRoutes } from "./routes/health.ts";
import { type JobRoutesDeps, jobRoutes } from "./routes/jobs.ts";
import { type KeyRoutesDeps, keyRoutes } from "./routes/keys.ts";
import { type MetricsRoutesDeps, metricsRoutes } from "./routes/metrics.ts";
import { type OpenAIRoutesDeps, openaiRoutes } from "./routes/openai.ts";
import { type OpenAIBatchRoutesDeps, openaiBatchRoutes } from "./routes/openai-batches.ts";
import { type UsageRoutesDeps, usageRoutes } from "./routes/usage.ts";
import { type WebhookRoutesDeps, webhookRoutes } from "./routes/webhooks.ts";
import { securityHeaders } from "./security-headers.ts";
import type { KeyStore } from "./stores/api-keys.ts";

export interface AppDeps
  extends JobRoutesDeps,
    BatchRoutesDeps,
    DocumentRoutesDeps,
    WebhookRoutesDeps,
    OpenAIRoutesDeps,
    OpenAIBatchRoutesDeps,
    KeyRoutesDeps,
    HealthRoutesDeps,
    MetricsRoutesDeps,
    UsageRoutesDeps,
    DashboardRoutesDeps {
  log: Logger;
  /** Largest request body, in bytes. */
  maxBody: number;
  /** Largest batch request body (POST /v1/batches, file uploads), in bytes. */
  maxBatchBody: number;
  keys: KeyStore;
  /** Per-key request rate; undefined when DOCKET_RATE_LIMIT is 0. */
  rateLimiter?: RateLimiter;
  /** Which Host and Origin headers are this server's (DOCKET_HOST, DOCKET_PUBLIC_URL). */
  origins: OriginPolicy;
}

/** Every route docket serves: the app registers these and /openapi.json documents these. */
export const ROUTES: readonly Route<AppDeps & DocsRoutesDeps>[] = [
  ...jobRoutes,
  ...webhookRoutes,
  ...batchRoutes,
  ...documentRoutes,
  ...openaiRoutes,
  ...openaiBatchRoutes,
  ...keyRoutes,
  ...usageRoutes,
  ...healthRoutes,
  ...docsRoutes,
  ...metricsRoutes,
  ...dashboardRoutes,
];

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof ApiError) {
      for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
      return c.json(err.toJSON(), err.status);
    }
    // The client closed the connection (an upload dropped half-way): nobody reads the answer and nothing is
    // wrong here, so no error line a client could flood the logs with; the request signal says so, not the message.
    if (c.req.raw.signal.aborted) {
      const code = (err as NodeJS.ErrnoException).code;
      deps.log.debug({ path: c.req.path, method: c.req.method, code }, "client went away before the request was answered");
      return c.body(null, 400);
    }
    deps.log.error({ err: err.message, path: c.req.path }, "unhandled error");
    return c.json(new ApiError("internal", "internal error").toJSON(), 500);
  });

  // Headers on every answer; each route then runs its own guards (route.ts): Origin and Host, key, rate, body.
  app.use("*", securityHeaders([DASHBOARD_HTML]));
  const g: Guards = {
    keys: deps.keys,
    rateLimiter: deps.rateLimiter,
    bodyLimits: { document: deps.maxBody, batch: deps.maxBatchBody },
    origins: deps.origins,
    sessions: deps.sessions,
  };
  mountRoutes(app, ROUTES, { ...deps, docs: apiDocs(openApiDocument(ROUTES)) }, g);
  mountNotFound(app, g);
  return app;
}
