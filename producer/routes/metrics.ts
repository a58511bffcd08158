import { Hono } from "hono";
import type { ProducerMetrics } from "../metrics.ts";

/** GET /metrics: Prometheus text exposition. */
export function metricsRoutes(metrics: ProducerMetrics) {
  const app = new Hono();
  app.get("/metrics", async (c) => c.body(await metrics.text(), 200, { "content-type": metrics.contentType }));
  return app;
}
