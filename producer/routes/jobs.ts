import { CreateJobRequest, ListJobsQuery } from "../../schema/api.ts";
import { ownDocument, ownerFilter, ownJob, principalOf, scopedIdempotencyKey } from "../auth/principal.ts";
import type { Canceller } from "../cancel.ts";
import { documentInput } from "../documents.ts";
import { checkSameRequest, RequestFingerprint } from "../idempotency.ts";
import { buildJobMessage } from "../job-message.ts";
import { type QueueEstimator, withoutTimes } from "../queue-estimate.ts";
import type { Recorder } from "../recorder.ts";
import type { Retrier } from "../retry.ts";
import { pathParam, type Route } from "../route.ts";
import type { DocumentRecords } from "../stores/documents.ts";
import { toView } from "../stores/jobs.ts";
import { type SubmitDeps, submitJob } from "../submit.ts";
import { parseJson, parseValue } from "../validate.ts";
import type { AddressPolicy } from "../webhooks/address.ts";
import type { WorkerRegistry } from "../worker-registry.ts";
import { jobEventStream } from "./job-events.ts";
import { checkWebhookUrl } from "./webhooks.ts";

export interface JobRoutesDeps extends SubmitDeps {
  canceller: Canceller;
  recorder: Recorder;
  webhookPolicy: AddressPolicy;
  documentRecords: DocumentRecords;
  retrier: Retrier;
  queue: QueueEstimator;
  /** Live workers' models: a queued job's view says when none serves its model. */
  workerRegistry: WorkerRegistry;
}

/** /v1/jobs: submit, list, get, cancel, retry, follow (SSE). */
export const jobRoutes: Route<JobRoutesDeps>[] = [
  {
    method: "post",
    path: "/v1/jobs",
    access: "key",
    tag: "jobs",
    summary: "Submit a job",
    description:
      "Validates, stores (queued) and publishes the job. `model` names the model to run it (absent: the default model); a job for a model no live worker serves waits, and its view says so in `waiting`. The document is `input.text`, or `input.documentId` naming an uploaded document (POST /v1/documents; unknown or another key's: 404 `document_not_found`). `webhookUrl` gets a signed Standard Webhooks callback when the job ends; a URL resolving to a private address is refused with `webhook_url_forbidden` unless DOCKET_WEBHOOK_ALLOW permits it. A job not started by its `deadline` fails `deadline_exceeded`. Over a quota of the key: 429 `quota_exceeded` with Retry-After.",
    body: "CreateJobRequest",
    headers: [
      {
        name: "Idempotency-Key",
        description:
          "The same key and body return the same job (200) instead of a new one; the same key with another body is 422.",
      },
    ],
    responses: {
      "202": "JobView",
      "200": { description: "The job an earlier request with this Idempotency-Key created.", schema: "JobView" },
      "400": "Error",
      "404": "Error",
      "413": "Error",
      "422": "Error",
      "429": "Error",
    },
    handler: async (c, deps) => {
      const req = await parseJson(c, CreateJobRequest);
      deps.documents.check(req.input.text, "input.text");
      const principal = principalOf(c);
      const key = scopedIdempotencyKey(principal, c.req.header("idempotency-key"));
      const idempotency = key ? { key, fingerprint: new RequestFingerprint().add(req).digest() } : undefined;
      const known = key ? deps.store.byIdempotencyKey(key) : undefined;
      if (known) {
        checkSameRequest(known, idempotency?.fingerprint);
        return c.json(toView(known, deps.workerRegistry.waiting(known)), 200);
      }
      if (req.webhookUrl) await checkWebhookUrl(deps.webhookPolicy, req.webhookUrl);
      const { documentId, ...own } = req.input;
      const input =
        documentId !== undefined
          ? documentInput(ownDocument(deps.documentRecords, principal, documentId, "input.documentId"), own)
          : own;
      const msg = buildJobMessage({
        lane: req.lane,
        task: req.task,
        model: req.model,
        input,
        params: req.params,
        customId: req.customId || undefined,
        deadline: req.deadline || undefined,
      });
      const { row, created } = await submitJob(deps, msg, {
        idempotency,
        webhookUrl: req.webhookUrl,
        owner: principal.keyId,
      });
      return c.json(toView(row, deps.workerRegistry.waiting(row)), created ? 202 : 200);
    },
  },
  {
    method: "get",
    path: "/v1/jobs",
    access: "key",
    tag: "jobs",
    summary: "List jobs, newest first, with filters and cursor pagination",
    query: [
      { name: "state", description: "queued, running, succeeded, failed or cancelled" },
      { name: "batchId", description: "jobs of one batch" },
      { name: "task", description: "summarize, extract, classify, ask or chat" },
      { name: "model", description: "jobs naming this model" },
      { name: "createdAfter", description: "ISO time" },
      { name: "createdBefore", description: "ISO time" },
      { name: "cursor", description: "`nextCursor` of the previous page" },
      { name: "limit", description: "1 to 1000, default 100" },
    ],
    responses: { "200": "JobList", "400": "Error" },
    handler: (c, { store, workerRegistry }) => {
      const q = parseValue(ListJobsQuery, c.req.query());
      const { rows, nextCursor } = store.list(q, ownerFilter(principalOf(c)));
      const data = rows.map((row) => toView(row, workerRegistry.waiting(row)));
      return c.json({ data, nextCursor, hasMore: nextCursor !== null });
    },
  },
  {
    method: "get",
    path: "/v1/jobs/{id}",
    access: "key",
    tag: "jobs",
    summary: "Get a job: state, result or error, timings; while queued, its place in line and estimated times",
    responses: { "200": "JobView", "404": "Error" },
    handler: (c, { store, queue, workerRegistry }) => {
      const row = ownJob(store, principalOf(c), pathParam(c, "id"));
      // A job no live worker can take has no times: nothing runs it until a worker for its model starts.
      const waiting = workerRegistry.waiting(row);
      return c.json({ ...toView(row, waiting), queue: waiting ? withoutTimes(queue.forJob(row)) : queue.forJob(row) });
    },
  },
  {
    method: "post",
    path: "/v1/jobs/{id}/retry",
    access: "key",
    tag: "jobs",
    summary: "Run a failed or expired job again, as its next attempt, with the remedy for its error",
    description:
      "Failed jobs, and jobs cancelled with `batch_expired`, go back in line as the same job (same id, attempts counting on, every run kept in its events), with the same inputs and the remedy for their error: `document_too_long` chunks the document (`overflow: chunk`), `output_truncated` doubles `maxTokens` (up to the context size), a deadline that passed is dropped. Any other state is 409 `conflict`; over a quota 429 `quota_exceeded`.",
    responses: { "202": "JobView", "404": "Error", "409": "Error", "429": "Error" },
    handler: async (c, { store, retrier, queue, workerRegistry }) => {
      const row = await retrier.retryJob(ownJob(store, principalOf(c), pathParam(c, "id")));
      const waiting = workerRegistry.waiting(row);
      return c.json({ ...toView(row, waiting), queue: waiting ? withoutTimes(queue.forJob(row)) : queue.forJob(row) }, 202);
    },
  },
  {
    method: "post",
    path: "/v1/jobs/{id}/cancel",
    access: "key",
    tag: "jobs",
    summary: "Cancel a queued or running job",
    responses: { "202": "JobView", "404": "Error", "409": "Error" },
    handler: async (c, { store, canceller }) => {
      const { id } = ownJob(store, principalOf(c), pathParam(c, "id"));
      return c.json(toView(await canceller.cancelJob(id)), 202);
    },
  },
  {
    method: "get",
    path: "/v1/jobs/{id}/events",
    access: "key",
    tag: "jobs",
    summary: "Live job events (Server-Sent Events)",
    description:
      "`event: state` with the job view first and on every change, `event: progress` with token counts; the stream ends after a terminal state.",
    responses: { "200": { description: "text/event-stream", contentType: "text/event-stream" }, "404": "Error" },
    handler: (c, { store, recorder, workerRegistry }) => {
      const { id } = ownJob(store, principalOf(c), pathParam(c, "id"));
      return jobEventStream(c, id, store, recorder, workerRegistry);
    },
  },
];
