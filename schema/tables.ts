import { blob, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { BatchState } from "./batch.ts";
import type { JobError, JobResult } from "./event.ts";
import type { JobInput, JobParams, JobState } from "./job.ts";
import type { Lane, Task } from "./subjects.ts";
import type { DeliveryStatus, WebhookEventType } from "./webhook.ts";

/** One row per job. The producer is the only writer; DOCKET_EVENTS can always rebuild it. */
export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    lane: text("lane").$type<Lane>().notNull(),
    task: text("task").$type<Task>().notNull(),
    state: text("state").$type<JobState>().notNull(),
    input: text("input", { mode: "json" }).$type<JobInput>(),
    params: text("params", { mode: "json" }).$type<JobParams>().notNull(),
    batchId: text("batch_id"),
    /** Position of the job in its batch's submission order (results come back in this order). */
    batchIndex: integer("batch_index"),
    customId: text("custom_id"),
    idempotencyKey: text("idempotency_key").unique(),
    /** Fingerprint of the request that used the key: the same key with another request is refused (422). */
    idempotencyFingerprint: text("idempotency_fingerprint"),
    result: text("result", { mode: "json" }).$type<JobResult>(),
    error: text("error", { mode: "json" }).$type<JobError>(),
    attempts: integer("attempts").notNull().default(0),
    workerId: text("worker_id"),
    submittedAt: text("submitted_at").notNull(),
    deadline: text("deadline"),
    /** Callback URL for the job's terminal event (webhook). */
    webhookUrl: text("webhook_url"),
    /** API key id that submitted the job; null for the admin key or when auth is off (producer/auth/). */
    owner: text("owner"),
    /** Set once JetStream acked the job message; a row left null is republished. */
    publishedAt: text("published_at"),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    index("jobs_state_idx").on(t.state),
    index("jobs_batch_idx").on(t.batchId),
    index("jobs_unpublished_idx").on(t.publishedAt),
    index("jobs_batch_order_idx").on(t.batchId, t.batchIndex),
    index("jobs_submitted_idx").on(t.submittedAt),
    index("jobs_owner_idx").on(t.owner, t.id),
  ],
);
export type JobRow = typeof jobs.$inferSelect;

/**
 * Events applied to a job, one row per (job, kind, attempt): the recorder's idempotence key.
 * Progress events are not stored.
 */
export const jobEvents = sqliteTable(
  "job_events",
  {
    jobId: text("job_id").notNull(),
    kind: text("kind").notNull(),
    attempt: integer("attempt").notNull(),
    workerId: text("worker_id").notNull(),
    at: text("at").notNull(),
    /** DOCKET_EVENTS stream sequence the event was read from. */
    streamSeq: integer("stream_seq"),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.kind, t.attempt] })],
);

/**
 * One row per batch. Counters follow its jobs' states: the recorder moves them in the same SQLite
 * transaction that applies a job's state change, so they never drift from the jobs table.
 */
export const batches = sqliteTable("batches", {
  id: text("id").primaryKey(),
  state: text("state").$type<BatchState>().notNull(),
  lane: text("lane").$type<Lane>().notNull(),
  task: text("task").$type<Task>().notNull(),
  params: text("params", { mode: "json" }).$type<JobParams>().notNull(),
  idempotencyKey: text("idempotency_key").unique(),
  /** Fingerprint of the request that used the key: the same key with another request is refused (422). */
  idempotencyFingerprint: text("idempotency_fingerprint"),
  webhookUrl: text("webhook_url"),
  /** API key id that submitted the batch; null for the admin key or when auth is off. */
  owner: text("owner"),
  total: integer("total").notNull(),
  queued: integer("queued").notNull().default(0),
  running: integer("running").notNull().default(0),
  succeeded: integer("succeeded").notNull().default(0),
  failed: integer("failed").notNull().default(0),
  cancelled: integer("cancelled").notNull().default(0),
  /** Set by POST /v1/batches/:id/cancel: the batch ends `cancelled` rather than `completed`. */
  cancelRequestedAt: text("cancel_requested_at"),
  error: text("error", { mode: "json" }).$type<{ code: string; message: string }>(),
  createdAt: text("created_at").notNull(),
  inProgressAt: text("in_progress_at"),
  finishedAt: text("finished_at"),
  updatedAt: text("updated_at").notNull(),
});
export type BatchRow = typeof batches.$inferSelect;

/**
 * Webhook outbox: a row is inserted in the same transaction as the state change it reports, then
 * delivered (and retried) by producer/webhooks/dispatcher.ts. `eventKey` makes one row per event.
 */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    eventKey: text("event_key").notNull().unique(),
    type: text("type").$type<WebhookEventType>().notNull(),
    jobId: text("job_id"),
    batchId: text("batch_id"),
    url: text("url").notNull(),
    /** The exact body sent and signed on every attempt. */
    payload: text("payload").notNull(),
    status: text("status").$type<DeliveryStatus>().notNull(),
    attempts: integer("attempts").notNull().default(0),
    /** Epoch milliseconds; null once delivered or dead. */
    nextAttemptAt: integer("next_attempt_at"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    createdAt: text("created_at").notNull(),
    deliveredAt: text("delivered_at"),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    index("webhook_deliveries_due_idx").on(t.status, t.nextAttemptAt),
    index("webhook_deliveries_job_idx").on(t.jobId),
    index("webhook_deliveries_batch_idx").on(t.batchId),
  ],
);
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;

/** Producer settings generated once and kept with the data (the webhook signing secret). */
export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  createdAt: text("created_at").notNull(),
});

/**
 * API keys created through POST /v1/keys. Only the SHA-256 of the secret is kept: the secret is shown
 * once, at creation. A revoked key stays listed (and keeps owning its jobs) but no longer authenticates.
 */
export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** Hex SHA-256 of the secret. */
  hash: text("hash").notNull().unique(),
  createdAt: text("created_at").notNull(),
  revokedAt: text("revoked_at"),
});
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/**
 * OpenAI Files (/openai/v1/files). An uploaded file keeps its bytes in `content`, in the database, so
 * `docket backup` and restore carry it with the batches it feeds. A batch's output and error files have
 * no content: their lines are rendered from the batch's jobs when downloaded (`batchId` + `batchPart`).
 */
export const files = sqliteTable(
  "files",
  {
    id: text("id").primaryKey(),
    filename: text("filename").notNull(),
    /** "batch" (uploaded input) or "batch_output" (a batch's output or error file). */
    purpose: text("purpose").notNull(),
    bytes: integer("bytes").notNull(),
    batchId: text("batch_id"),
    batchPart: text("batch_part").$type<"output" | "error">(),
    /** Reserved for API-key ownership (unused until scoping lands). */
    owner: text("owner"),
    createdAt: text("created_at").notNull(),
    content: blob("content", { mode: "buffer" }),
  },
  (t) => [index("files_created_idx").on(t.createdAt)],
);
export type FileRow = typeof files.$inferSelect;

/** What an OpenAI batch (/openai/v1/batches) adds to its docket batch (same id). */
export const openaiBatches = sqliteTable("openai_batches", {
  id: text("id").primaryKey(),
  inputFileId: text("input_file_id").notNull(),
  endpoint: text("endpoint").notNull(),
  completionWindow: text("completion_window").notNull(),
  metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>(),
  model: text("model"),
  /** Request lines refused before they became jobs (bad body): reported in the error file. */
  rejected: text("rejected", { mode: "json" }).$type<{ customId: string; line: number; code: string; message: string }[]>(),
  /** Why the input file was refused as a whole (the batch is `failed` with these errors). */
  errors: text("errors", { mode: "json" }).$type<{ code: string; message: string; line?: number; param?: string }[]>(),
  outputFileId: text("output_file_id"),
  errorFileId: text("error_file_id"),
  /** Set once the output and error files exist (the batch ended). */
  filesAt: text("files_at"),
  owner: text("owner"),
  createdAt: text("created_at").notNull(),
});
export type OpenAIBatchRow = typeof openaiBatches.$inferSelect;

/**
 * Documents uploaded once (POST /v1/documents) for many jobs to name. The text lives in the docket-docs object
 * store under `object` (the document id), where workers read it; it stays until the document is deleted.
 */
export const documents = sqliteTable(
  "documents",
  {
    id: text("id").primaryKey(),
    /** API key id that uploaded it; null for the admin key or when auth is off (producer/auth/). */
    owner: text("owner"),
    title: text("title"),
    /** The uploaded file's name; null for a document sent as JSON text. */
    filename: text("filename"),
    mime: text("mime"),
    /** UTF-8 bytes of the text (after extraction from a PDF or DOCX). */
    bytes: integer("bytes").notNull(),
    /** Hex SHA-256 of the text: the `input.sha256` of every job on it. */
    sha256: text("sha256").notNull(),
    /** Name of the object in the docket-docs object store holding the text. */
    object: text("object").notNull(),
    idempotencyKey: text("idempotency_key").unique(),
    /** Fingerprint of the upload that used the key: the same key with another upload is refused (422). */
    idempotencyFingerprint: text("idempotency_fingerprint"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("documents_owner_idx").on(t.owner, t.id)],
);
export type DocumentRow = typeof documents.$inferSelect;
