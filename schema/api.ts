import { z } from "zod";
import { JobError, JobResult } from "./event.ts";
import { JOB_STATES, JobParams } from "./job.ts";
import { LANES, TASKS } from "./subjects.ts";

/** POST /v1/jobs body. Task-specific requirements are checked here so the error names the field. */
export const CreateJobRequest = z
  .object({
    task: z.enum(TASKS),
    lane: z.enum(LANES).default("default"),
    input: z
      .object({
        text: z.string().optional(),
        title: z.string().max(1024).optional(),
        mime: z.string().max(255).optional(),
      })
      .default({}),
    params: JobParams.default({}),
    customId: z.string().max(256).optional(),
    deadline: z.iso.datetime({ offset: true }).optional(),
    /** Standard Webhooks callback for the job's terminal state (job.succeeded | job.failed | job.cancelled). */
    webhookUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
  })
  .superRefine((req, ctx) => {
    const need = (ok: unknown, path: (string | number)[], message: string) => {
      if (!ok) ctx.addIssue({ code: "custom", path, message });
    };
    if (req.task === "chat") need(req.params.messages, ["params", "messages"], "is required for task chat");
    else need(req.input.text !== undefined && req.input.text.length > 0, ["input", "text"], `is required for task ${req.task}`);
    if (req.task === "classify")
      need(req.params.labels, ["params", "labels"], "is required for task classify (at least 2 labels)");
    if (req.task === "ask") need(req.params.question, ["params", "question"], "is required for task ask");
    if (req.task === "extract") need(req.params.schema, ["params", "schema"], "is required for task extract (a JSON schema)");
  });
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

/** GET /v1/jobs/:id. */
export const JobView = z.object({
  id: z.string(),
  state: z.enum(JOB_STATES),
  lane: z.enum(LANES),
  task: z.enum(TASKS),
  batchId: z.string().nullable(),
  customId: z.string().nullable(),
  attempts: z.number(),
  submittedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  result: JobResult.nullable(),
  error: JobError.nullable(),
  webhookUrl: z.string().nullable(),
});
export type JobView = z.infer<typeof JobView>;

/** Every API error: a stable code (schema/errors.ts), a human message, and the offending field if any. */
export const ErrorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});
