import { createHash } from "node:crypto";
import type { JobInput, JobMessage, JobParams } from "../schema/job.ts";
import { newId } from "./ids.ts";

/** What a job message is made of; optional fields left undefined (or null, from a row) are not sent. */
export interface JobFields {
  /** Default: a new job id. */
  id?: string;
  lane: JobMessage["lane"];
  task: JobMessage["task"];
  /** The model that must run it (schema/model.ts); unset or null: the default model. */
  model?: string | null;
  /** The API key id that submits it; unset or null: the admin key, or auth off. */
  owner?: string | null;
  input: JobInput;
  params: JobParams;
  batchId?: string | null;
  customId?: string | null;
  deadline?: string | null;
  /** The first attempt of the job's current run (a retry continues the count); 1 is not sent. */
  firstAttempt?: number;
  /** Default: now. */
  submittedAt?: string;
}

/** Hex SHA-256 of a document's text as UTF-8: `input.sha256` of a job, `sha256` of an uploaded document. */
export const textSha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * The one place a job message is built: API jobs, chat completions, batch items and republished rows.
 * A job with a document carries `input.sha256`: computed here from inline text, kept when the input already
 * has it (an uploaded document's, or a claim-checked row's, whose text is no longer inline).
 */
export function buildJobMessage(f: JobFields): JobMessage {
  const { input } = f;
  const sha256 = input.sha256 ?? (input.text ? textSha256(input.text) : undefined);
  return {
    v: 1,
    id: f.id ?? newId("job"),
    lane: f.lane,
    task: f.task,
    ...(f.model != null ? { model: f.model } : {}),
    ...(f.owner != null ? { owner: f.owner } : {}),
    input: sha256 !== undefined ? { ...input, sha256 } : input,
    params: f.params,
    ...(f.batchId != null ? { batchId: f.batchId } : {}),
    ...(f.customId != null ? { customId: f.customId } : {}),
    submittedAt: f.submittedAt ?? new Date().toISOString(),
    // In UTC, as toISOString writes it: the producer's sweep compares deadlines as strings.
    ...(f.deadline != null ? { deadline: new Date(f.deadline).toISOString() } : {}),
    ...(f.firstAttempt !== undefined && f.firstAttempt > 1 ? { firstAttempt: f.firstAttempt } : {}),
  };
}
