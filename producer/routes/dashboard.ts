import { streamSSE } from "hono/streaming";
import { DashboardJobsQuery, type DashboardSession, DashboardSignIn } from "../../schema/api.ts";
import type { DashboardSessions } from "../auth/session.ts";
import type { Sample } from "../dashboard/history.ts";
import { DASHBOARD_HTML } from "../dashboard/page.ts";
import { type Dashboard, type Snapshot, withWaiting } from "../dashboard/snapshot.ts";
import { ApiError } from "../errors.ts";
import { type QueueEstimator, withoutTimes } from "../queue-estimate.ts";
import { pathParam, type Route } from "../route.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import { type BatchStore, toBatchView } from "../stores/batches.ts";
import type { JobEventStore } from "../stores/job-events.ts";
import { type JobStore, toView } from "../stores/jobs.ts";
import { page } from "../stores/page.ts";
import { parseJson, parseValue } from "../validate.ts";
import type { WorkerRegistry } from "../worker-registry.ts";

export interface DashboardRoutesDeps {
  dashboard: Dashboard;
  store: JobStore;
  batches: BatchStore;
  events: JobEventStore;
  keys: KeyStore;
  sessions: DashboardSessions;
  /** Queue position and ETA of a queued job or batch (the `queue` of GET /v1/jobs/:id and /v1/batches/:id). */
  queue: QueueEstimator;
  /** Live workers' models: a queued job's detail says when none serves its model. */
  workerRegistry: WorkerRegistry;
}

/**
 * /dashboard: the page (it holds no data, so anyone may load it), its sign-in (the admin key for a session
 * cookie, DashboardSessions), and, for the admin, its snapshot, a live stream of snapshots and history samples,
 * job lists and job and batch details. All of them read; cancel and retry are the API's own routes, which the page
 * calls with the admin key (docs/security.md).
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
    summary: "The dashboard's figures now, with the history the producer keeps (the last hour): queues, workers, alerts",
    responses: { "200": { description: "Snapshot (JSON)" }, "401": "Error", "403": "Error" },
    handler: async (c, { dashboard }) => c.json(await dashboard.snapshot(true)),
  },
  {
    method: "get",
    path: "/dashboard/stream",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary:
      "Live dashboard (Server-Sent Events): `event: history` (the samples kept) first, `event: snapshot` once a second, `event: sample` with each new history point",
    responses: {
      "200": { description: "text/event-stream", contentType: "text/event-stream" },
      "401": "Error",
      "403": "Error",
      "429": "Error",
    },
    handler: (c, { dashboard }) => {
      if (!dashboard.subscribe()) throw new ApiError("backpressure", "too many dashboard viewers; retry later");
      return streamSSE(c, async (stream) => {
        // Writes go out one after another; a page that reads too slowly misses snapshots (the next one replaces
        // them), never samples, so its history has no holes.
        let writes = Promise.resolve();
        let pending = 0;
        const send = (event: string, data: unknown) => {
          pending++;
          writes = writes
            .then(() => stream.writeSSE({ event, data: JSON.stringify(data) }))
            .catch(() => undefined)
            .finally(() => pending--);
        };
        const onSnapshot = (snap: Snapshot) => pending < MAX_PENDING_WRITES && send("snapshot", snap);
        const onSample = (sample: Sample) => send("sample", sample);
        const ended = new Promise<void>((resolve) => {
          stream.onAbort(resolve);
          dashboard.once("close", resolve);
        });
        try {
          send("history", { sampleMs: dashboard.options.sampleMs, samples: dashboard.samples() });
          send("snapshot", await dashboard.snapshot());
          dashboard.on("snapshot", onSnapshot);
          dashboard.on("sample", onSample);
          await ended;
        } finally {
          dashboard.off("snapshot", onSnapshot);
          dashboard.off("sample", onSample);
          dashboard.unsubscribe();
          await writes;
        }
      });
    },
  },
  {
    method: "get",
    path: "/dashboard/jobs",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "Jobs as the dashboard lists them (ids, file name, custom id, state, error code, times): a batch's, or the latest",
    query: [
      { name: "batchId", description: "a batch's jobs, in submission order" },
      { name: "state", description: "one or more states, comma-separated" },
      { name: "code", description: "failed jobs with this error code" },
      { name: "after", description: "with batchId: `next` of the previous page" },
      { name: "limit", description: "1 to 500, default 100" },
    ],
    responses: { "200": { description: "{data: JobSummary[], next}" }, "400": "Error", "401": "Error", "403": "Error" },
    handler: (c, { store, workerRegistry }) => {
      const q = parseValue(DashboardJobsQuery, c.req.query());
      const rows = store.summaries({ batchId: q.batchId, states: q.state, errorCode: q.code, afterIndex: q.after }, q.limit + 1);
      const { rows: listed, hasMore } = page(rows, q.limit);
      const data = withWaiting(listed, workerRegistry);
      const next = hasMore && q.batchId !== undefined ? (data.at(-1)?.batchIndex ?? null) : null;
      return c.json({ data, next, hasMore });
    },
  },
  {
    method: "get",
    path: "/dashboard/jobs/{id}",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "One job with its document's title and its recorded events, for the dashboard's detail view",
    responses: { "200": { description: "{job: JobView, document, events}" }, "401": "Error", "403": "Error", "404": "Error" },
    handler: (c, { store, events, queue, workerRegistry }) => {
      const id = pathParam(c, "id");
      const row = store.get(id);
      if (!row) throw new ApiError("not_found", `no job with id ${id}`);
      const waiting = workerRegistry.waiting(row);
      const job = { ...toView(row, waiting), queue: waiting ? withoutTimes(queue.forJob(row)) : queue.forJob(row) };
      const document = { title: row.input?.title ?? null, mime: row.input?.mime ?? null };
      return c.json({ job, document, events: events.forJob(row.id) });
    },
  },
  {
    method: "get",
    path: "/dashboard/batches/{id}",
    access: "admin",
    browser: true,
    tag: "dashboard",
    summary: "One batch (the batch API's view), for the dashboard's batch view",
    responses: { "200": "BatchView", "401": "Error", "403": "Error", "404": "Error" },
    handler: (c, { batches, queue }) => {
      const id = pathParam(c, "id");
      const row = batches.get(id);
      if (!row) throw new ApiError("not_found", `no batch with id ${id}`);
      return c.json({ ...toBatchView(row), queue: queue.forBatch(row) });
    },
  },
];

/** Snapshots queued for one slow page before the next ones are skipped. */
const MAX_PENDING_WRITES = 4;
