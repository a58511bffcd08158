import type { JobInput, JobMessage, JobParams } from "../schema/job.ts";
import { newId } from "./ids.ts";

/** What a job message is made of; optional fields left undefined (or null, from a row) are not sent. */
export interface JobFields {
  /** Default: a new job id. */
  id?: string;
  lane: JobMessage["lane"];
  task: JobMessage["task"];
  input: JobInput;
  params: JobParams;
  batchId?: string | null;
  customId?: string | null;
  deadline?: string | null;
  /** Default: now. */
  submittedAt?: string;
}

/** The one place a job message is built: API jobs, chat completions, batch items and republished rows. */
export function buildJobMessage(f: JobFields): JobMessage {
  return {
    v: 1,
    id: f.id ?? newId("job"),
    lane: f.lane,
    task: f.task,
    input: f.input,
    params: f.params,
    ...(f.batchId != null ? { batchId: f.batchId } : {}),
    ...(f.customId != null ? { customId: f.customId } : {}),
    submittedAt: f.submittedAt ?? new Date().toISOString(),
    ...(f.deadline != null ? { deadline: f.deadline } : {}),
  };
}
