import type { ProducerMetrics } from "../metrics.ts";
import type { Route } from "../route.ts";

export interface MetricsRoutesDeps {
  metrics: ProducerMetrics;
}

export const metricsRoutes: Route<MetricsRoutesDeps>[] = [
  {
    method: "get",
    path: "/metrics",
    access: "admin",
    tag: "operations",
    summary: "Prometheus metrics, text exposition format (admin key only)",
    responses: { "200": { description: "Prometheus text", contentType: "text/plain" }, "401": "Error", "403": "Error" },
    handler: async (c, { metrics }) => c.body(await metrics.text(), 200, { "content-type": metrics.contentType }),
  },
];
