import type { Context } from "hono";
import { stream } from "hono/streaming";
import type { z } from "zod";
import { missingForTask } from "../../schema/api.ts";
import { BatchOptions, CreateBatchRequest, type RejectedItem } from "../../schema/batch.ts";
import type { JobMessage } from "../../schema/job.ts";
import { ownBatch, ownDocument, principalOf, scopedIdempotencyKey } from "../auth/principal.ts";
import type { BatchIntake } from "../batch-intake.ts";
import { type ItemContext, jobsFromArray, jobsFromFiles, jobsFromJsonl, MAX_REPORTED, nothingAccepted } from "../batch-items.ts";
import type { Canceller } from "../cancel.ts";
import { documentInput } from "../documents.ts";
import { ApiError } from "../errors.ts";
import type { ExtractionPool } from "../extraction/pool.ts";
import { batchFingerprint, checkSameRequest } from "../idempotency.ts";
import { newId } from "../ids.ts";
import type { QueueEstimator } from "../queue-estimate.ts";
import type { Retrier } from "../retry.ts";
import { pathParam, type Route } from "../route.ts";
import { type BatchStore, toBatchView } from "../stores/batches.ts";
import type { DocumentRecords } from "../stores/documents.ts";
import { parseValue, readForm, readJson } from "../validate.ts";
import type { AddressPolicy } from "../webhooks/address.ts";
import { checkWebhookUrl } from "./webhooks.ts";

export interface BatchRoutesDeps {
  batches: BatchStore;
  intake: BatchIntake;
  canceller: Canceller;
  /** Text of uploaded files: PDF and DOCX on extraction threads, under their limits. */
  extraction: ExtractionPool;
  maxDocument: number;
  maxBatchItems: number;
  webhookPolicy: AddressPolicy;
  documentRecords: DocumentRecords;
  retrier: Retrier;
  queue: QueueEstimator;
}

const RESULTS_PAGE = 500;

const JSONL_TYPES = ["application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines"];

/** Batch options of a JSONL or multipart upload: query string (or form fields), params as a JSON string. */
function optionsFrom(fields: Record<string, string | undefined>): BatchOptions {
  let params: unknown;
  if (fields.params !== undefined) {
    try {
      params = JSON.parse(fields.params);
    } catch {
      throw new ApiError("invalid_json", "params is not valid JSON", "params");
    }
  }
  return parseValue(BatchOptions, {
    task: fields.task,
    lane: fields.lane || undefined,
    model: fields.model || undefined,
    webhookUrl: fields.webhookUrl || undefined,
    deadline: fields.deadline || undefined,
    completionWindow: fields.completionWindow || undefined,
    params,
  }) as z.infer<typeof BatchOptions>;
}

/** POST /v1/batches: the batch's items from JSON, a JSONL stream or multipart files, then one intake. */
async function submitBatch(c: Context, deps: BatchRoutesDeps): Promise<Response> {
  const { batches, intake, extraction, maxDocument, maxBatchItems, webhookPolicy } = deps;
  const principal = principalOf(c);
  const key = scopedIdempotencyKey(principal, c.req.header("idempotency-key"));
  const id = newId("batch");
  const createdAt = new Date().toISOString();
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  let options: BatchOptions;
  let jobs: JobMessage[];
  let rejected: RejectedItem[] = [];
  const ctx = (o: BatchOptions): ItemContext => ({ options: o, batchId: id, submittedAt: createdAt, maxDocument });

  if (JSONL_TYPES.includes(type)) {
    options = optionsFrom(c.req.query());
    ({ jobs, rejected } = await jobsFromJsonl(ctx(options), c.req.raw.body, maxBatchItems));
    if (jobs.length === 0) throw nothingAccepted(rejected, "line");
  } else if (type === "multipart/form-data") {
    const form = await readForm(c, true);
    const field = (name: string) => (typeof form[name] === "string" ? (form[name] as string) : undefined);
    options = optionsFrom({
      task: field("task"),
      lane: field("lane"),
      model: field("model"),
      webhookUrl: field("webhookUrl"),
      deadline: field("deadline"),
      completionWindow: field("completionWindow"),
      params: field("params"),
    });
    const files = Object.values(form)
      .flat()
      .filter((v): v is File => typeof v !== "string");
    if (files.length === 0) throw new ApiError("validation_failed", "no files in the upload; send them as file parts", "files");
    if (files.length > maxBatchItems)
      throw new ApiError("validation_failed", `a batch holds at most ${maxBatchItems} items (DOCKET_MAX_BATCH_ITEMS)`, "files");
    // What the task needs from params (labels, a question, a schema) is the batch's problem, not each file's: it is
    // refused before any file is read (OCR takes seconds a page).
    const missing = missingForTask(options.task, true, options.params);
    if (missing) throw new ApiError("validation_failed", `${missing.path.join(".")}: ${missing.message}`, missing.path.join("."));
    ({ jobs, rejected } = await jobsFromFiles(ctx(options), files, (f) => extraction.extract(f)));
    if (jobs.length === 0) throw nothingAccepted(rejected, "file");
  } else {
    const req = parseValue(CreateBatchRequest, await readJson(c, " (or send JSONL as application/x-ndjson)"));
    options = req;
    const document =
      req.documentId !== undefined
        ? documentInput(ownDocument(deps.documentRecords, principal, req.documentId, "documentId"))
        : undefined;
    jobs = await jobsFromArray({ ...ctx(req), document }, req.items, maxBatchItems);
  }

  // The body is read before a known key is answered: the same key with another batch is 422, not the first batch.
  const idempotency = key ? { key, fingerprint: await batchFingerprint(options, jobs, rejected) } : undefined;
  const known = key ? batches.byIdempotencyKey(key) : undefined;
  if (known) {
    checkSameRequest(known, idempotency?.fingerprint);
    return c.json(toBatchView(known), 200);
  }
  if (options.webhookUrl) await checkWebhookUrl(webhookPolicy, options.webhookUrl);
  const { row, created } = await intake.submit(id, options, jobs, createdAt, idempotency, principal.keyId);
  if (!created) checkSameRequest(row, idempotency?.fingerprint);
  const view = toBatchView(row);
  return c.json(
    rejected.length ? { ...view, rejected: { count: rejected.length, items: rejected.slice(0, MAX_REPORTED) } } : view,
    created ? 202 : 200,
  );
}

/** /v1/batches: submit (JSON items, JSONL, multipart files), get, results (JSONL), cancel, retry. */
export const batchRoutes: Route<BatchRoutesDeps>[] = [
  {
    method: "post",
    path: "/v1/batches",
    access: "key",
    bodySize: "batch",
    tag: "batches",
    summary: "Submit a batch: JSON items, a JSONL upload or multipart files",
    description:
      "JSON: CreateBatchRequest; with `documentId` (an uploaded document, POST /v1/documents) items without `text` run on that document. JSONL (`application/x-ndjson`): one BatchItem per line, batch options (task, lane, model, params as JSON, webhookUrl) in the query string; bad lines are reported in `rejected`, good ones accepted. Multipart: files (txt, md, pdf, docx; png, jpeg, tiff and scanned PDF pages by OCR) plus the options as form fields; each unusable file is reported in `rejected` (`file`, `code`, `message`), the others accepted. When nothing is accepted the error lists every refusal in `error.rejected`. At most DOCKET_MAX_BATCH_ITEMS items and DOCKET_MAX_BATCH_BODY_BYTES bytes.",
    body: {
      "application/json": "CreateBatchRequest",
      ...Object.fromEntries(JSONL_TYPES.map((type) => [type, "BatchItem" as const])),
      "multipart/form-data": "BatchUploadForm",
    },
    headers: [
      {
        name: "Idempotency-Key",
        description:
          "The same key and items return the same batch (200) instead of a new one; the same key with other items is 422.",
      },
    ],
    query: [
      { name: "task", description: "JSONL uploads: the batch's task" },
      { name: "lane", description: "JSONL uploads: lane (default batch)" },
      { name: "model", description: "JSONL uploads: the model its jobs name (default: the default model)" },
      { name: "params", description: "JSONL uploads: params as a JSON object" },
      { name: "webhookUrl", description: "JSONL uploads: callback for batch.completed / failed / cancelled / expired" },
      {
        name: "deadline",
        description: "JSONL uploads: ISO time every job carries; one not started by then fails deadline_exceeded",
      },
      { name: "completionWindow", description: "JSONL uploads: e.g. 24h; still unfinished then, the batch expires" },
    ],
    responses: {
      "202": "BatchCreated",
      "200": { description: "The batch an earlier request with this Idempotency-Key created.", schema: "BatchView" },
      "400": "Error",
      "404": "Error",
      "413": "Error",
      "422": "Error",
      "429": "Error",
    },
    handler: submitBatch,
  },
  {
    method: "get",
    path: "/v1/batches/{id}",
    access: "key",
    tag: "batches",
    summary: "Get a batch: state, counts by job state, progress; while jobs are queued, its place in line and estimated times",
    responses: { "200": "BatchView", "404": "Error" },
    handler: (c, { batches, queue }) => {
      const row = ownBatch(batches, principalOf(c), pathParam(c, "id"));
      return c.json({ ...toBatchView(row), queue: queue.forBatch(row) });
    },
  },
  {
    method: "get",
    path: "/v1/batches/{id}/results",
    access: "key",
    tag: "batches",
    summary: "Download a batch's results as JSONL, one BatchResultLine per item in submission order",
    responses: {
      "200": { description: "JSONL of BatchResultLine", contentType: "application/x-ndjson", schema: "BatchResultLine" },
      "404": "Error",
    },
    handler: (c, { batches }) => {
      const { id } = ownBatch(batches, principalOf(c), pathParam(c, "id"));
      c.header("content-type", "application/x-ndjson");
      return stream(c, async (s) => {
        let after = -1;
        while (!s.aborted) {
          const page = batches.results(id, after, RESULTS_PAGE);
          if (page.length === 0) break;
          after = page.at(-1)?.index ?? after;
          await s.write(`${page.map((l) => JSON.stringify(l)).join("\n")}\n`);
        }
      });
    },
  },
  {
    method: "post",
    path: "/v1/batches/{id}/cancel",
    access: "key",
    tag: "batches",
    summary: "Cancel a batch: queued jobs at once, running ones by their workers",
    responses: { "202": "BatchView", "404": "Error", "409": "Error" },
    handler: async (c, { batches, canceller }) => {
      const { id } = ownBatch(batches, principalOf(c), pathParam(c, "id"));
      return c.json(toBatchView(await canceller.cancelBatch(id)), 202);
    },
  },
  {
    method: "post",
    path: "/v1/batches/{id}/retry",
    access: "key",
    tag: "batches",
    summary: "Run a batch's failed and expired jobs again (optionally those with one error code), each with its remedy",
    description:
      "Each job retries as POST /v1/jobs/{id}/retry does; an ended batch reopens (`in_progress`, and a new completion window if it had one) and ends again with its own webhook. Admission is whole: over a quota 429 `quota_exceeded`, a full queue 429 `backpressure`, nothing retried. No such job: 409 `conflict`; a batch being cancelled or expiring: 409 until it has ended.",
    query: [
      { name: "code", description: "retry only the jobs whose error has this code (e.g. output_truncated, batch_expired)" },
    ],
    responses: { "202": "BatchRetried", "404": "Error", "409": "Error", "429": "Error" },
    handler: async (c, { batches, retrier, queue }) => {
      const batch = ownBatch(batches, principalOf(c), pathParam(c, "id"));
      const code = c.req.query("code") || undefined;
      const { batch: row, retried } = await retrier.retryBatch(batch, code);
      return c.json({ ...toBatchView(row), queue: queue.forBatch(row), retried }, 202);
    },
  },
];
