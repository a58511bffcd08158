import { on } from "node:events";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { DASHBOARD_HTML } from "../dashboard/page.ts";
import type { Dashboard, Snapshot } from "../dashboard/snapshot.ts";
import { ApiError } from "../errors.ts";
import type { JobEventStore } from "../stores/job-events.ts";
import { type JobStore, toView } from "../stores/jobs.ts";

export interface DashboardRoutesDeps {
  dashboard: Dashboard;
  store: JobStore;
  events: JobEventStore;
}

/** /dashboard: the page, its snapshot (JSON), a live stream of snapshots (SSE, one a second) and job details. */
export function dashboardRoutes({ dashboard, store, events }: DashboardRoutesDeps) {
  const app = new Hono();

  app.get("/", (c) => c.html(DASHBOARD_HTML));
  app.get("/snapshot", async (c) => c.json(await dashboard.snapshot()));

  app.get("/stream", (c) => {
    if (!dashboard.subscribe()) throw new ApiError("backpressure", "too many dashboard viewers; retry later");
    return streamSSE(c, async (stream) => {
      const ac = new AbortController();
      stream.onAbort(() => ac.abort());
      const closed = () => ac.abort();
      dashboard.once("close", closed);
      try {
        const snapshots = on(dashboard, "snapshot", { signal: ac.signal }) as AsyncIterableIterator<[Snapshot]>;
        await stream.writeSSE({ event: "snapshot", data: JSON.stringify(await dashboard.snapshot()) });
        for await (const [snap] of snapshots) await stream.writeSSE({ event: "snapshot", data: JSON.stringify(snap) });
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      } finally {
        dashboard.off("close", closed);
        dashboard.unsubscribe();
      }
    });
  });

  app.get("/jobs/:id", (c) => {
    const row = store.get(c.req.param("id"));
    if (!row) throw new ApiError("not_found", `no job with id ${c.req.param("id")}`);
    return c.json({ job: toView(row), events: events.forJob(row.id) });
  });

  return app;
}
