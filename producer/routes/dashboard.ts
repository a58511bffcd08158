import { on } from "node:events";
import { streamSSE } from "hono/streaming";
import { type DashboardSession, DashboardSignIn } from "../../schema/api.ts";
import type { DashboardSessions } from "../auth/session.ts";
import { DASHBOARD_HTML } from "../dashboard/page.ts";
import type { Dashboard, Snapshot } from "../dashboard/snapshot.ts";
import { ApiError } from "../errors.ts";
import { pathParam, type Route } from "../route.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import type { JobEventStore } from "../stores/job-events.ts";
import { type JobStore, toView } from "../stores/jobs.ts";
import { parseJson } from "../validate.ts";

export interface DashboardRoutesDeps {
  dashboard: Dashboard;
  store: JobStore;
  events: JobEventStore;
  keys: KeyStore;
  sessions: DashboardSessions;
}

/**
 * /dashboard: the page (it holds no data, so anyone may load it), its sign-in (the admin key for a session
 * cookie, DashboardSessions), and, for the admin, its snapshot, a live stream of snapshots and job details.
 */
export const dashboardRoutes: Route<DashboardRoutesDeps>[] = [
  {
    method: "get",
    path: "/dashboard",
    access: "open",
    tag: "dashboard",
    summary: "Operations dashboard page; it asks for the admin key when auth is on",
    responses: { "200": { description: "HTML", contentType: "text/html" } },
    handler: (c) => c.html(DASHBOARD_HTML),
  },
  {
    method: "get",
    path: "/dashboard/session",
    access: "open",
    tag: "dashboard",
    summary: "Whether the dashboard needs signing in (auth on) and whether this browser is",
    responses: { "200": "DashboardSession" },
    handler: (c, { keys, sessions }) =>
      c.json({ auth: keys.enabled, signedIn: !keys.enabled || sessions.valid(c) } satisfies DashboardSession),
  },
  {
    method: "post",
    path: "/dashboard/session",
    access: "open",
    tag: "dashboard",
    summary: "Sign the dashboard in with the admin key: sets an HttpOnly, SameSite=Strict session cookie for /dashboard",
    body: "DashboardSignIn",
    responses: { "204": { description: "Signed in" }, "401": "Error", "403": "Error", "415": "Error" },
    handler: async (c, { keys, sessions }) => {
      const { key } = await parseJson(c, DashboardSignIn);
      if (keys.enabled) {
        const principal = keys.verify(key);
        if (!principal) throw new ApiError("unauthorized", "the key is not valid (or was revoked)", "key");
        if (!principal.admin) throw new ApiError("forbidden", "the dashboard needs the admin key (DOCKET_API_KEY)", "key");
        sessions.signIn(c);
      }
      return c.body(null, 204);
    },
  },
  {
    method: "delete",
    path: "/dashboard/session",
    access: "open",
    tag: "dashboard",
    summary: "Sign the dashboard out (clears the session cookie)",
    responses: { "204": { description: "Signed out" } },
    handler: (c, { sessions }) => {
      sessions.signOut(c);
      return c.body(null, 204);
    },
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
