import { z } from "zod";
import { BATCH_STATES } from "./batch.ts";

/** The OpenAI Files and Batch API contract docket answers under /openai/v1 (chat completions only). */

export const BATCH_ENDPOINT = "/v1/chat/completions";

/** GET /openai/v1/files/:id. docket files are `processed` as soon as they are stored. */
export const FileObject = z.object({
  /** `file-…` */
  id: z.string(),
  object: z.literal("file"),
  bytes: z.number(),
  created_at: z.number(),
  filename: z.string(),
  /** `batch` for uploads, `batch_output` for a batch's output and error files. */
  purpose: z.string(),
  status: z.literal("processed"),
  expires_at: z.null(),
  status_details: z.null(),
});
export type FileObject = z.infer<typeof FileObject>;

export const FileList = z.object({
  object: z.literal("list"),
  data: z.array(FileObject),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});

export const FileDeleted = z.object({ id: z.string(), object: z.literal("file"), deleted: z.literal(true) });

/** GET /openai/v1/files and /openai/v1/batches: newest first, `after` is the last id of the previous page. */
export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().max(64).optional(),
  purpose: z.string().max(64).optional(),
});

/** POST /openai/v1/batches. */
export const CreateOpenAIBatchRequest = z.object({
  input_file_id: z.string().max(64),
  endpoint: z.literal(BATCH_ENDPOINT, { error: `docket batches serve ${BATCH_ENDPOINT} only` }),
  completion_window: z.literal("24h"),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
});
export type CreateOpenAIBatchRequest = z.infer<typeof CreateOpenAIBatchRequest>;

/** One line of a batch input file. The body is validated as a chat completion request on its own. */
export const BatchRequestLine = z.object({
  custom_id: z.string().min(1).max(256),
  method: z.literal("POST"),
  url: z.literal(BATCH_ENDPOINT),
  body: z.record(z.string(), z.unknown()),
});

const BatchError = z.object({
  code: z.string(),
  message: z.string(),
  line: z.number().nullable(),
  param: z.string().nullable(),
});

/** The OpenAI batch object (GET /openai/v1/batches/:id); `id` is the docket batch id. */
export const OpenAIBatch = z.object({
  id: z.string(),
  object: z.literal("batch"),
  endpoint: z.string(),
  model: z.string().nullable(),
  errors: z.object({ object: z.literal("list"), data: z.array(BatchError) }).nullable(),
  input_file_id: z.string(),
  completion_window: z.string(),
  status: z.enum(BATCH_STATES),
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  created_at: z.number(),
  in_progress_at: z.number().nullable(),
  expires_at: z.number(),
  finalizing_at: z.number().nullable(),
  completed_at: z.number().nullable(),
  failed_at: z.number().nullable(),
  expired_at: z.number().nullable(),
  cancelling_at: z.number().nullable(),
  cancelled_at: z.number().nullable(),
  request_counts: z.object({ total: z.number(), completed: z.number(), failed: z.number() }),
  metadata: z.record(z.string(), z.string()).nullable(),
});
export type OpenAIBatch = z.infer<typeof OpenAIBatch>;

export const OpenAIBatchList = z.object({
  object: z.literal("list"),
  data: z.array(OpenAIBatch),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});

/** One line of a batch's output (status_code 200) or error file. */
export const BatchOutputLine = z.object({
  /** `batch_req_` + the docket job id (or the line number for a request that never became a job). */
  id: z.string(),
  custom_id: z.string(),
  response: z.object({ status_code: z.number(), request_id: z.string(), body: z.record(z.string(), z.unknown()) }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type BatchOutputLine = z.infer<typeof BatchOutputLine>;
