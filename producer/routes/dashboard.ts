import { on } from "node:events";
import { streamSSE } from "hono/streaming";
import { DASHBOARD_HTML } from "../dashboard/page.ts";
import type { Dashboard, Snapshot } from "../dashboard/snapshot.ts";
import { ApiError } from "../errors.ts";
import { pathParam, type Route } from "../route.ts";
import type { JobEventStore } from "../stores/job-events.ts";
import { type JobStore, toView } from "../stores/jobs.ts";

export interface DashboardRoutesDeps {
  dashboard: Dashboard;
  store: JobStore;
  events: JobEventStore;
}

/** /dashboard (admin key, asked for by the browser): the page, its snapshot, a live stream of snapshots and job details. */
export const dashboardRoutes: Route<DashboardRoutesDeps>[] = [
  {
    method: "get",
    path: "/dashboard",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "Operations dashboard page (admin key, as the Basic password in a browser)",
    responses: { "200": { description: "HTML", contentType: "text/html" }, "401": "Error", "403": "Error" },
    handler: (c) => c.html(DASHBOARD_HTML),
  },
  {
    method: "get",
    path: "/dashboard/snapshot",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "The dashboard's figures now: queues, workers, throughput, recent jobs",
    responses: { "200": { description: "Snapshot (JSON)" }, "401": "Error", "403": "Error" },
    handler: async (c, { dashboard }) => c.json(await dashboard.snapshot()),
  },
  {
    method: "get",
    path: "/dashboard/stream",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "Live snapshots (Server-Sent Events, `event: snapshot` once a second)",
    responses: {
      "200": { description: "text/event-stream", contentType: "text/event-stream" },
      "401": "Error",
      "403": "Error",
      "429": "Error",
    },
    handler: (c, { dashboard }) => {
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
    },
  },
  {
    method: "get",
    path: "/dashboard/jobs/{id}",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "One job with its recorded events, for the dashboard's detail view",
    responses: { "200": { description: "{job: JobView, events}" }, "401": "Error", "403": "Error", "404": "Error" },
    handler: (c, { store, events }) => {
      const id = pathParam(c, "id");
      const row = store.get(id);
      if (!row) throw new ApiError("not_found", `no job with id ${id}`);
      return c.json({ job: toView(row), events: events.forJob(row.id) });
    },
  },
];
