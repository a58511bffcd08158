import { z } from "zod";
import { RejectedItem } from "./batch.ts";
import { JobError, JobResult } from "./event.ts";
import { chatMessagesIssue, JOB_STATES, JobParams } from "./job.ts";
import { jsonSchemaIssue } from "./json-schema.ts";
import { RequestedModel } from "./model.ts";
import { QueueEstimate } from "./queue.ts";
import { LANES, TASKS, type Task } from "./subjects.ts";
import { WebhookUrl } from "./webhook.ts";

/**
 * What a task needs beyond the common shape (shared by jobs and batch items), or undefined when it is all there.
 * `hasDocument`: the job has non-empty text or names an uploaded document.
 */
export function missingForTask(
  task: Task,
  hasDocument: boolean,
  params: JobParams,
): { path: string[]; message: string } | undefined {
  if (task === "chat") {
    if (!params.messages) return { path: ["params", "messages"], message: "is required for task chat" };
    const issue = chatMessagesIssue(params.messages);
    if (issue) return { path: ["params", "messages"], message: issue };
  } else if (!hasDocument) return { path: ["input", "text"], message: `is required for task ${task}` };
  if (task === "classify" && !params.labels)
    return { path: ["params", "labels"], message: "is required for task classify (at least 2 labels)" };
  if (task === "ask" && !params.question) return { path: ["params", "question"], message: "is required for task ask" };
  if (task === "extract" && !params.schema && !params.preset)
    return { path: ["params", "schema"], message: "is required for task extract (a JSON schema, or params.preset)" };
  if (params.schema) {
    const issue = jsonSchemaIssue(params.schema);
    if (issue) return { path: ["params", "schema"], message: `is not a valid JSON schema: ${issue.at}: ${issue.message}` };
  }
  return undefined;
}

/** POST /v1/jobs body. Task-specific requirements are checked here so the error names the field. */
export const CreateJobRequest = z
  .object({
    task: z.enum(TASKS),
    lane: z.enum(LANES).default("default"),
    /**
     * The model to run it (a worker's DOCKET_MODEL_NAME, as GET /openai/v1/models lists it); absent: the default
     * model. Normalized like the workers' names (lowercase, other characters turned to '-'). A model no live worker
     * serves is accepted: the job waits, and its view says so (`waiting`).
     */
    model: RequestedModel.optional(),
    input: z
      .object({
        text: z.string().optional(),
        /** An uploaded document (POST /v1/documents) instead of `text`. */
        documentId: z.string().max(64).optional(),
        /** With documentId, title and mime replace the uploaded document's for this job. */
        title: z.string().max(1024).optional(),
        mime: z.string().max(255).optional(),
      })
      .default({}),
    params: JobParams.default({}),
    customId: z.string().max(256).optional(),
    deadline: z.iso.datetime({ offset: true }).optional(),
    /** Standard Webhooks callback for the job's terminal state (job.succeeded | job.failed | job.cancelled). */
    webhookUrl: WebhookUrl.optional(),
  })
  .superRefine((req, ctx) => {
    if (req.input.text !== undefined && req.input.documentId !== undefined)
      ctx.addIssue({ code: "custom", path: ["input", "documentId"], message: "send input.text or input.documentId, not both" });
    const hasDocument = !!req.input.text || req.input.documentId !== undefined;
    const missing = missingForTask(req.task, hasDocument, req.params);
    if (missing) ctx.addIssue({ code: "custom", path: missing.path, message: missing.message });
  });
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

/** GET /v1/jobs/:id. */
export const JobView = z.object({
  id: z.string(),
  state: z.enum(JOB_STATES),
  lane: z.enum(LANES),
  task: z.enum(TASKS),
  /** The model the job named; null: the default model. What answered is result.model. */
  model: z.string().nullable(),
  /** Why a queued job does not start, when no live worker serves its model ("no worker serves model triage"). */
  waiting: z.string().optional(),
  batchId: z.string().nullable(),
  customId: z.string().nullable(),
  attempts: z.number(),
  submittedAt: z.string(),
  /** The job fails `deadline_exceeded` if it has not started by then. */
  deadline: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  result: JobResult.nullable(),
  error: JobError.nullable(),
  webhookUrl: z.string().nullable(),
  /** Pages of the job's uploaded file whose text was read by OCR (1-based); absent when none was. */
  ocrPages: z.array(z.number()).optional(),
  /** GET /v1/jobs/:id of a queued job: its place in line and estimated times (null once it left the queue). */
  queue: QueueEstimate.nullable().optional(),
});
export type JobView = z.infer<typeof JobView>;

/** GET /v1/jobs query: filters and cursor pagination (newest first; the cursor is the last id seen). */
export const ListJobsQuery = z.object({
  state: z.enum(JOB_STATES).optional(),
  batchId: z.string().max(64).optional(),
  task: z.enum(TASKS).optional(),
  /** Jobs naming this model. */
  model: z.string().max(64).optional(),
  createdAfter: z.iso.datetime({ offset: true }).optional(),
  createdBefore: z.iso.datetime({ offset: true }).optional(),
  cursor: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

/** GET /v1/usage query: days are UTC dates (YYYY-MM-DD), both included. */
export const UsageQuery = z.object({
  /** Another key's usage: the admin key only. */
  keyId: z.string().max(64).optional(),
  from: z.iso.date().optional(),
  to: z.iso.date().optional(),
});
export type UsageQuery = z.infer<typeof UsageQuery>;

const UsageCounts = z.object({
  /** Jobs that ended that day, by outcome (a retried job counts once per run). */
  succeeded: z.number(),
  failed: z.number(),
  /** Of those, jobs on a document (every task but chat). */
  documents: z.number(),
  /** From the results of the succeeded jobs. */
  promptTokens: z.number(),
  completionTokens: z.number(),
  /** Of promptTokens, those reused from an earlier job on the same document. */
  cachedTokens: z.number(),
});

/** One key's usage on one UTC day. */
export const UsageDay = UsageCounts.extend({
  /** null: the admin key (DOCKET_API_KEY), or jobs submitted with auth off. */
  keyId: z.string().nullable(),
  keyName: z.string(),
  day: z.string(),
});
export type UsageDay = z.infer<typeof UsageDay>;

/** GET /v1/usage: per key and day (by day, then key), and the totals over them. */
export const UsageReport = z.object({ data: z.array(UsageDay), totals: UsageCounts });
export type UsageReport = z.infer<typeof UsageReport>;

/** Every API error: a stable code (schema/errors.ts), a human message, and the offending field if any. */
export const ErrorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
    /** An upload none of whose files or lines was accepted: every refusal (the first 100; `count` for all). */
    rejected: z.object({ count: z.number(), items: z.array(RejectedItem) }).optional(),
  }),
});

/** A key's quotas; a null (or absent, at creation) quota is no limit. */
export const KeyQuotas = z.object({
  /** Most prompt + completion tokens per UTC day: recorded usage, plus the estimate of its queued and running jobs. */
  tokensPerDay: z.number().int().min(1).nullable(),
  /** Most jobs it may have queued at once. */
  queuedJobs: z.number().int().min(1).nullable(),
});
export type KeyQuotas = z.infer<typeof KeyQuotas>;

/**
 * A key's share of the default and batch lanes against the other keys with queued work, in tokens: a key of weight 2
 * gets twice the tokens of a key of weight 1 while both have work queued (docs/scheduling.md).
 */
export const KeyWeight = z.number().min(0.01).max(100);

/** POST /v1/keys body. */
export const CreateKeyRequest = z.object({
  name: z.string().trim().min(1).max(128),
  quotas: KeyQuotas.partial().optional(),
  weight: KeyWeight.optional(),
});
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

/** PATCH /v1/keys/:id body: what it names changes (a quota set to null is lifted). */
export const UpdateKeyRequest = z.object({
  name: z.string().trim().min(1).max(128).optional(),
  quotas: KeyQuotas.partial().optional(),
  weight: KeyWeight.optional(),
});
export type UpdateKeyRequest = z.infer<typeof UpdateKeyRequest>;

/** POST /dashboard/session body: the admin key, exchanged for the dashboard's session cookie. */
export const DashboardSignIn = z.object({ key: z.string().min(1).max(1024) });
export type DashboardSignIn = z.infer<typeof DashboardSignIn>;

/** GET /dashboard/session: whether the dashboard needs signing in, and whether this browser is. */
export const DashboardSession = z.object({ auth: z.boolean(), signedIn: z.boolean() });
export type DashboardSession = z.infer<typeof DashboardSession>;

/** GET /dashboard/jobs: the dashboard's job lists (a batch's jobs, the recent jobs, failures of one code). */
export const DashboardJobsQuery = z.object({
  batchId: z.string().max(200).optional(),
  /** One state or several, comma-separated. */
  state: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const states = (v ?? "").split(",").filter(Boolean);
      const bad = states.find((s) => !(JOB_STATES as readonly string[]).includes(s));
      if (bad) {
        ctx.addIssue({ code: "custom", message: `not a job state: ${bad} (${JOB_STATES.join(", ")})` });
        return z.NEVER;
      }
      return states as (typeof JOB_STATES)[number][];
    }),
  /** Failed jobs with this error code. */
  code: z.string().max(64).optional(),
  /** With batchId: the previous page's `next`. */
  after: z.coerce.number().int().min(-1).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export type DashboardJobsQuery = z.infer<typeof DashboardJobsQuery>;

/** GET /v1/keys items: never the secret. */
export const KeyView = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  quotas: KeyQuotas,
  /** Its share of the default and batch lanes against other keys with queued work (1: an equal share). */
  weight: z.number(),
});
export type KeyView = z.infer<typeof KeyView>;

/** POST /v1/keys answer: the only time the secret is shown. */
export const CreatedKey = KeyView.extend({ key: z.string() });
export type CreatedKey = z.infer<typeof CreatedKey>;

export const KeyList = z.object({ data: z.array(KeyView) });
export type KeyList = z.infer<typeof KeyList>;
