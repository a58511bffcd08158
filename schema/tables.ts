import { blob, index, integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";
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
    /** The model the job named (JobMessage.model); null: the default model. */
    model: text("model"),
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
    /** UTC ISO time; a job still queued then fails `deadline_exceeded` (the producer's sweep, the worker's check). */
    deadline: text("deadline"),
    /**
     * When the job last entered the queue (submission, or a retry): its place in its lane's line, then its batch
     * index (a batch's jobs are queued at once and published in that order).
     */
    queuedAt: text("queued_at"),
    /** Estimated prompt tokens (document bytes / 4, plus the task's own text): queue ETAs and token quotas. */
    estimatedPromptTokens: integer("estimated_prompt_tokens"),
    /** The job's token budget when it was queued: params.maxTokens, else DOCKET_MAX_TOKENS. */
    maxTokens: integer("max_tokens"),
    /**
     * The first attempt of the job's current run: 1, or after a retry (POST .../retry) the attempt after the last
     * one; events of earlier attempts are kept in job_events but no longer change the job.
     */
    firstAttempt: integer("first_attempt").notNull().default(1),
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
    index("jobs_owner_state_idx").on(t.owner, t.state),
    index("jobs_queue_idx").on(t.state, t.lane, t.queuedAt, t.batchIndex, t.id),
    index("jobs_deadline_idx").on(t.state, t.deadline),
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
    /** `failed` (and a `cancelled` that carries one): the error code; `retried`: the code of the failure retried. */
    code: text("code"),
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
  /** UTC ISO time every job of the batch carries as its deadline (POST /v1/batches `deadline`). */
  deadline: text("deadline"),
  /** End of the batch's completion window (OpenAI batches): still unfinished then, it expires. */
  expiresAt: text("expires_at"),
  /** When the window ended with work left: its unfinished jobs are cancelled and the batch ends `expired`. */
  expiredAt: text("expired_at"),
  /** Times the batch was reopened by a retry of its jobs (each run's end is its own webhook). */
  retries: integer("retries").notNull().default(0),
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
  /** Most prompt + completion tokens per UTC day (recorded usage plus what is queued); null: no quota. */
  quotaTokensPerDay: integer("quota_tokens_per_day"),
  /** Most jobs the key may have queued at once; null: no quota. */
  quotaQueuedJobs: integer("quota_queued_jobs"),
  /** The key's share of a lane against other keys with queued work (worker/fair-share.ts): 2 gets twice 1's tokens. */
  weight: real("weight").notNull().default(1),
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

/**
 * Usage per API key and UTC day, from the recorded results: the recorder adds a job's usage in the transaction that
 * records its end (succeeded or failed), so it never drifts from the jobs table. `key` is the API key id, or ""
 * for the admin key and for jobs submitted with auth off (a primary key column cannot be null in an upsert).
 */
export const usageDaily = sqliteTable(
  "usage_daily",
  {
    key: text("key").notNull(),
    /** YYYY-MM-DD, UTC: the day the jobs ended. */
    day: text("day").notNull(),
    succeeded: integer("succeeded").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    /** Of those jobs, the ones on a document (every task but chat). */
    documents: integer("documents").notNull().default(0),
    promptTokens: integer("prompt_tokens").notNull().default(0),
    completionTokens: integer("completion_tokens").notNull().default(0),
    /** Of promptTokens, those reused from an earlier job on the same document. */
    cachedTokens: integer("cached_tokens").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.key, t.day] }), index("usage_daily_day_idx").on(t.day)],
);
export type UsageDailyRow = typeof usageDaily.$inferSelect;
