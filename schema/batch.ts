import { z } from "zod";
import { JobParams } from "./job.ts";
import { RequestedModel } from "./model.ts";
import { QueueEstimate } from "./queue.ts";
import { LANES, TASKS } from "./subjects.ts";
import { WebhookUrl } from "./webhook.ts";

/**
 * The OpenAI batch object's states. docket never enters `finalizing` (results are live); a batch with a completion
 * window (the OpenAI Batch API's) still unfinished when it ends becomes `expired`.
 */
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
  /** The model for this item instead of the batch's (an OpenAI batch line's body.model). */
  model: RequestedModel.optional(),
  params: JobParams.optional(),
});
export type BatchItem = z.infer<typeof BatchItem>;

const WINDOW_UNITS_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The longest completion window a batch may ask for. */
export const MAX_WINDOW_MS = 30 * WINDOW_UNITS_MS.d;

/** A completion window ("24h", "90m", "30s", "2d") in milliseconds. */
export function windowMs(window: string): number {
  const m = /^([1-9]\d{0,6})([smhd])$/.exec(window);
  return m ? Number(m[1]) * WINDOW_UNITS_MS[m[2] as keyof typeof WINDOW_UNITS_MS] : Number.NaN;
}

/** What every batch body shares: in JSON as fields, in a JSONL or multipart upload as query or form fields. */
export const BatchOptions = z.object({
  task: z.enum(TASKS),
  lane: z.enum(LANES).default("batch"),
  /** The model its jobs name (as POST /v1/jobs `model`); absent: the default model. */
  model: RequestedModel.optional(),
  params: JobParams.default({}),
  /** Stored with the batch for the webhook dispatcher. */
  webhookUrl: WebhookUrl.optional(),
  /** Every job of the batch carries it: one not started by then fails `deadline_exceeded`. */
  deadline: z.iso.datetime({ offset: true }).optional(),
  /**
   * How long the batch may take, as OpenAI's `completion_window` ("24h"; s, m, h or d, at most 30d): still
   * unfinished then, its unfinished jobs are cancelled (`batch_expired`) and it ends `expired`.
   */
  completionWindow: z
    .string()
    .refine((w) => windowMs(w) <= MAX_WINDOW_MS, "must be a number and a unit, s, m, h or d (e.g. 24h), at most 30d")
    .optional(),
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
  /** The deadline every job of the batch carries. */
  deadline: z.string().nullable(),
  /** End of the completion window (OpenAI batches): still unfinished then, the batch expires. */
  expiresAt: z.string().nullable(),
  /** When the window ended with work left (the batch is, or is about to be, `expired`). */
  expiredAt: z.string().nullable(),
  /** GET /v1/batches/:id while jobs are queued: the first one's place in line, when the last should finish. */
  queue: QueueEstimate.nullable().optional(),
});
export type BatchView = z.infer<typeof BatchView>;

/** POST /v1/batches/:id/retry: the batch, and how many of its jobs went back in line. */
export const BatchRetried = BatchView.extend({ retried: z.number() });
export type BatchRetried = z.infer<typeof BatchRetried>;

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
