import { z } from "zod";
import { JobParams } from "./job.ts";
import { LANES, TASKS } from "./subjects.ts";
import { WebhookUrl } from "./webhook.ts";

/** The OpenAI batch object's states. docket never enters `finalizing` or `expired` (results are live, no window). */
export const BATCH_STATES = [
  "validating",
  "in_progress",
  "finalizing",
  "completed",
  "failed",
  "expired",
  "cancelling",
  "cancelled",
] as const;
export type BatchState = (typeof BATCH_STATES)[number];
export const TERMINAL_BATCH_STATES: readonly BatchState[] = ["completed", "failed", "expired", "cancelled"];

/** One document of a batch: the batch's task and params apply unless the item overrides them. */
export const BatchItem = z.object({
  text: z.string().optional(),
  customId: z.string().max(256).optional(),
  title: z.string().max(1024).optional(),
  mime: z.string().max(255).optional(),
  task: z.enum(TASKS).optional(),
  params: JobParams.optional(),
});
export type BatchItem = z.infer<typeof BatchItem>;

/** What every batch body shares: in JSON as fields, in a JSONL or multipart upload as query or form fields. */
export const BatchOptions = z.object({
  task: z.enum(TASKS),
  lane: z.enum(LANES).default("batch"),
  params: JobParams.default({}),
  /** Stored with the batch for the webhook dispatcher. */
  webhookUrl: WebhookUrl.optional(),
});
export type BatchOptions = z.infer<typeof BatchOptions>;

/** POST /v1/batches with content-type application/json. */
export const CreateBatchRequest = BatchOptions.extend({
  items: z.array(z.unknown()).min(1),
  /** An uploaded document (POST /v1/documents) that items without `text` are about. */
  documentId: z.string().max(64).optional(),
});
export type CreateBatchRequest = z.infer<typeof CreateBatchRequest>;

export const BatchCounts = z.object({
  queued: z.number(),
  running: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  cancelled: z.number(),
});

/** GET /v1/batches/:id. */
export const BatchView = z.object({
  id: z.string(),
  object: z.literal("batch"),
  state: z.enum(BATCH_STATES),
  lane: z.enum(LANES),
  task: z.enum(TASKS),
  total: z.number(),
  counts: BatchCounts,
  progress: z.object({ done: z.number(), total: z.number() }),
  webhookUrl: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.string(),
  inProgressAt: z.string().nullable(),
  cancelRequestedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type BatchView = z.infer<typeof BatchView>;

/** A line of a JSONL upload, or a file of a multipart upload, that was not accepted. */
export const RejectedItem = z.object({
  /** 1-based line of a JSONL upload, or 0-based index of a JSON items array. */
  line: z.number().optional(),
  index: z.number().optional(),
  /** A multipart upload's file, by its name (which would have been its customId). */
  file: z.string().optional(),
  code: z.string(),
  message: z.string(),
  field: z.string().optional(),
});
export type RejectedItem = z.infer<typeof RejectedItem>;

/** One line of GET /v1/batches/:id/results, in submission order. */
export const BatchResultLine = z.object({
  index: z.number(),
  jobId: z.string(),
  customId: z.string().nullable(),
  state: z.string(),
  result: z.unknown().nullable(),
  error: z.unknown().nullable(),
  /** Pages of the item's uploaded file whose text was read by OCR (1-based); absent when none was. */
  ocrPages: z.array(z.number()).optional(),
});
export type BatchResultLine = z.infer<typeof BatchResultLine>;
