import type { Route } from "../route.ts";

export interface HealthRoutesDeps {
  /** NATS is connected. */
  ready: () => boolean;
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
    summary: "Readiness (NATS connected)",
    responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
    handler: (c, { ready }) => (ready() ? c.json({ ready: true }) : c.json({ ready: false }, 503)),
  },
];
