import { z } from "zod";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "./json-schema.ts";
import { ModelName } from "./model.ts";
import { LANES, TASKS } from "./subjects.ts";

/** Job ids are NATS subject tokens and Nats-Msg-Id values: no dots, spaces or wildcards. */
export const JobId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "must contain only letters, digits, '_' and '-'");

export const ChatMessage = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/**
 * The one rule on a chat's messages beyond their shape, shared by /v1/jobs, batches, /openai and the worker:
 * the model answers the last message, so it must be the user's. Returns why they are refused, if they are.
 */
export function chatMessagesIssue(messages: readonly Pick<ChatMessage, "role">[]): string | undefined {
  return messages.at(-1)?.role === "user" ? undefined : "the last message must be from the user";
}

/** What a worker does with a document longer than the context: map-reduce over chunks, keep head and tail, or refuse. */
export const Overflow = z.enum(["chunk", "truncate", "fail"]);

/** Ready extraction schemas (worker/tasks/presets.ts): legal (parties, clauses, obligations, risks), medical. */
export const PRESET_NAMES = ["legal", "medical"] as const;

/** The largest token budget a job may ask for. */
export const MAX_TOKENS_LIMIT = 32_768;

export const JobParams = z.object({
  maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).optional(),
  temperature: z.number().min(0).max(2).optional(),
  seed: z.number().int().min(0).optional(),
  /** JSON schema the result must satisfy (extract). */
  schema: z
    .record(z.string(), z.unknown())
    .refine((s) => !nestsDeeperThan(s, MAX_JSON_DEPTH), `nests deeper than ${MAX_JSON_DEPTH} levels`)
    .optional(),
  /** Allowed labels (classify). */
  labels: z.array(z.string().min(1)).min(2).max(100).optional(),
  /** The question about the document (ask). */
  question: z.string().min(1).max(8192).optional(),
  /** OpenAI-style conversation (chat). */
  messages: z.array(ChatMessage).min(1).max(256).optional(),
  overflow: Overflow.optional(),
  /** A ready extraction schema instead of params.schema (extract). */
  preset: z.enum(PRESET_NAMES).optional(),
  /**
   * Generate exactly maxTokens: end-of-generation tokens are never sampled (vLLM's and llama.cpp server's
   * `ignore_eos`). For benchmarks and load tests that compare runs on equal work; not for analysis.
   */
  ignoreEos: z.boolean().optional(),
});
export type JobParams = z.infer<typeof JobParams>;

export const JobInput = z.object({
  /** The document, inline. */
  text: z.string().optional(),
  /** Claim check: name of the object in the docket-docs object store holding the document. */
  ref: z.string().optional(),
  title: z.string().max(1024).optional(),
  mime: z.string().max(255).optional(),
  /** The uploaded document (POST /v1/documents) the job runs on; `ref` names its text in the object store. */
  documentId: z.string().max(64).optional(),
  /** Hex SHA-256 of the document text: jobs on the same content, named or inline, share its evaluated prompt. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** Pages of the uploaded file whose text was read by OCR, 1-based (an image file is page 1). */
  ocrPages: z.array(z.number().int().min(1)).optional(),
});
export type JobInput = z.infer<typeof JobInput>;

/**
 * The message on docket.jobs.<lane>.<task> (or docket.jobs.<lane>.<task>.<model> when it names a model). Any NATS
 * client that publishes a valid one gets it processed.
 */
export const JobMessage = z.object({
  v: z.literal(1),
  id: JobId,
  lane: z.enum(LANES),
  task: z.enum(TASKS),
  /**
   * The model that must run the job (a worker's DOCKET_MODEL_NAME); absent: the deployment's default model. The
   * subject routes the job, so a publisher puts the same name in its last token (subjects.job); the producer leaves
   * the token off for the default model's name (DOCKET_DEFAULT_MODEL), whose workers read both subjects.
   */
  model: ModelName.optional(),
  /**
   * The API key id that submitted the job. In a shared lane (SHARED_LANES) the producer publishes it on the key's
   * subject (subjects.sharedJob), so workers share the lane fairly between keys; absent: the admin key, auth off.
   */
  owner: z
    .string()
    .regex(/^[A-Za-z0-9_]{1,64}$/)
    .optional(),
  input: JobInput,
  params: JobParams.default({}),
  /**
   * Claim check for params too large to travel inline (a long conversation, a large schema): the name of the
   * object in the docket-docs object store that holds them as JSON; `params` is then empty.
   */
  paramsRef: z.string().optional(),
  batchId: z.string().optional(),
  customId: z.string().optional(),
  submittedAt: z.string(),
  /** ISO time: a worker that pulls the job later fails it `deadline_exceeded` instead of running it. */
  deadline: z.string().optional(),
  /**
   * The attempt number of this message's first delivery (default 1): a job retried through the API continues its
   * attempts, so its events never collide with an earlier run's (the recorder keys them by job, kind and attempt).
   */
  firstAttempt: z.number().int().min(1).optional(),
});
export type JobMessage = z.infer<typeof JobMessage>;

/**
 * Nats-Msg-Id of a job message: the job id (JetStream drops a duplicate publish inside its window), and for a
 * retried job's run the id and its first attempt, so the retry is not taken for a duplicate of the first publish.
 */
export const jobMsgId = (msg: Pick<JobMessage, "id" | "firstAttempt">): string =>
  msg.firstAttempt && msg.firstAttempt > 1 ? `${msg.id}.${msg.firstAttempt}` : msg.id;

export const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];
