import type { Route } from "../route.ts";

export interface HealthRoutesDeps {
  /** Why the producer cannot serve now (NATS disconnected, JetStream lacks part of docket's layout), or undefined. */
  notReady: () => Promise<string | undefined>;
}

export const healthRoutes: Route<HealthRoutesDeps>[] = [
  {
    method: "get",
    path: "/healthz",
    access: "open",
    tag: "operations",
    summary: "Liveness",
    responses: { "200": { description: "alive" } },
    handler: (c) => c.json({ ok: true }),
  },
  {
    method: "get",
    path: "/readyz",
    access: "open",
    tag: "operations",
    summary: "Readiness: NATS connected, docket's streams, consumers and buckets in JetStream, no lost job left to republish",
    responses: { "200": { description: "{ready: true}" }, "503": { description: "{ready: false, reason}" } },
    handler: async (c, { notReady }) => {
      const reason = await notReady();
      return reason === undefined ? c.json({ ready: true }) : c.json({ ready: false, reason }, 503);
    },
  },
];
