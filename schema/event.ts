import { z } from "zod";
import { JobId } from "./job.ts";
import { EVENT_KINDS, LANES, TASKS } from "./subjects.ts";

export const Usage = z.object({
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  /** Of promptTokens, those whose evaluated state was reused from an earlier job on the same document. */
  cachedTokens: z.number().int().min(0).optional(),
});
export type Usage = z.infer<typeof Usage>;

export const Timings = z.object({
  /** From submission to the worker starting the job. */
  queueMs: z.number().min(0),
  /** From the worker starting the job to its result. */
  runMs: z.number().min(0),
  tokensPerSecond: z.number().min(0),
});
export type Timings = z.infer<typeof Timings>;

export const JobResult = z.object({
  text: z.string(),
  json: z.unknown().optional(),
  usage: Usage,
  timings: Timings,
  model: z.string(),
  /** Chunks a long document was split into (map-reduce), when it was. */
  chunks: z.number().int().min(1).optional(),
  /** The document was cut to its head and tail to fit the context. */
  truncated: z.boolean().optional(),
});
export type JobResult = z.infer<typeof JobResult>;

export const JobError = z.object({
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
});
export type JobError = z.infer<typeof JobError>;

/** The message on docket.events.<jobId>.<kind>. */
export const EventMessage = z.object({
  v: z.literal(1),
  jobId: JobId,
  kind: z.enum(EVENT_KINDS),
  attempt: z.number().int().min(1),
  workerId: z.string(),
  at: z.string(),
  /** Carried so a job first seen through its events (published by another client) is recorded all the same. */
  lane: z.enum(LANES).optional(),
  task: z.enum(TASKS).optional(),
  /** The model the job named (JobMessage.model); what answered is result.model. */
  model: z.string().optional(),
  batchId: z.string().optional(),
  customId: z.string().optional(),
  submittedAt: z.string().optional(),
  /** progress: tokens generated so far. */
  tokens: z.number().int().min(0).optional(),
  /** progress of an interactive chat job: the text generated since the last progress event... */
  delta: z.string().optional(),
  /** ...which starts at this character offset of the answer (a gap means an event was lost). */
  offset: z.number().int().min(0).optional(),
  result: JobResult.optional(),
  error: JobError.optional(),
});
export type EventMessage = z.infer<typeof EventMessage>;

/** Nats-Msg-Id of an event: a final event published twice for one attempt is stored once. */
export const eventMsgId = (e: Pick<EventMessage, "jobId" | "kind" | "attempt">) => `${e.jobId}.${e.kind}.${e.attempt}`;
