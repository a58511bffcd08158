import type { Logger } from "../runtime/log.ts";
import type { JobMessage } from "../schema/job.ts";
import type { JobRow } from "../schema/tables.ts";
import { type DocumentStore, MessageTooLargeError } from "./documents.ts";
import { ApiError } from "./errors.ts";
import { type TokenEstimate, type TokenEstimator, totalTokens } from "./estimate.ts";
import { checkSameRequest, type Idempotency } from "./idempotency.ts";
import { type Publisher, QueueFullError } from "./publisher.ts";
import type { Quotas } from "./quotas.ts";
import type { JobStore } from "./stores/jobs.ts";

export interface SubmitDeps {
  store: JobStore;
  publisher: Publisher;
  documents: DocumentStore;
  log: Logger;
  estimator: TokenEstimator;
  quotas: Quotas;
}

export interface SubmitOptions {
  /**
   * Key already scoped to the API key (scopedIdempotencyKey): a known key returns its job, created false,
   * or 422 idempotency_key_reused when its first request had another fingerprint.
   */
  idempotency?: Idempotency;
  webhookUrl?: string;
  /** The submitting API key's id; null for the admin and when auth is off. */
  owner: string | null;
}

/**
 * Submits one job (POST /v1/jobs and OpenAI chat completions; batches go through BatchIntake): a message
 * that could never fit NATS's max_payload is 413 and one over the key's quota 429 before anything is written
 * (its tokens are estimated while the document is still inline); a large document goes to the
 * object store, the row is written `queued`, the message published (its params through the object store
 * when they do not fit inline). A full queue is 429 backpressure and a message NATS refuses for its size
 * is 413, both leaving nothing the job stored behind (an uploaded document it names is not its own); any
 * other publish failure leaves the row for the publisher's sweep, which republishes it until JetStream acks.
 */
export async function submitJob(
  deps: SubmitDeps,
  job: JobMessage,
  options: SubmitOptions,
): Promise<{ row: JobRow; created: boolean; msg: JobMessage }> {
  deps.documents.checkFits(job);
  const estimate = deps.estimator.estimate(job);
  const release = deps.quotas.admit(options.owner, { jobs: 1, tokens: totalTokens(estimate) });
  try {
    return await submit(deps, job, options, estimate);
  } finally {
    release();
  }
}

async function submit(
  { store, publisher, documents, log }: SubmitDeps,
  job: JobMessage,
  { idempotency, webhookUrl, owner }: SubmitOptions,
  estimate: TokenEstimate,
): Promise<{ row: JobRow; created: boolean; msg: JobMessage }> {
  // The key travels with the job: in a shared lane it picks the subject (Publisher), so workers share fairly.
  let msg: JobMessage = owner ? { ...job, owner } : job;
  if (documents.needsRef(msg)) {
    try {
      msg = { ...msg, input: await documents.claim(msg.id, msg.input) };
    } catch (err) {
      throw new ApiError("unavailable", `could not store the document: ${(err as Error).message}; retry later`);
    }
  }
  const { row, created } = store.insert(msg, idempotency, webhookUrl, owner, estimate);
  if (!created) {
    await documents.discard(msg);
    checkSameRequest(row, idempotency?.fingerprint);
    return { row, created, msg };
  }
  try {
    await publisher.publish(msg);
  } catch (err) {
    if (err instanceof QueueFullError || err instanceof MessageTooLargeError) {
      store.delete(msg.id);
      await documents.discard(msg);
      if (err instanceof MessageTooLargeError) throw new ApiError("payload_too_large", err.message);
      throw new ApiError("backpressure", "the job queue is full; retry later", undefined, { "retry-after": "5" });
    }
    log.warn({ jobId: msg.id, err: (err as Error).message }, "publish failed; queued for republish");
  }
  log.info({ jobId: msg.id, task: msg.task, lane: msg.lane }, "job submitted");
  return { row, created, msg };
}
