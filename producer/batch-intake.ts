import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "../runtime/log.ts";
import { type BatchOptions, windowMs } from "../schema/batch.ts";
import type { JobMessage } from "../schema/job.ts";
import { JOBS_STREAM } from "../schema/subjects.ts";
import type { BatchRow } from "../schema/tables.ts";
import type { DocumentStore } from "./documents.ts";
import { ApiError } from "./errors.ts";
import { type TokenEstimate, type TokenEstimator, totalTokens } from "./estimate.ts";
import type { Idempotency } from "./idempotency.ts";
import { pipelined, yieldToEventLoop } from "./pipeline.ts";
import type { Publisher } from "./publisher.ts";
import type { Quotas } from "./quotas.ts";
import type { BatchStore } from "./stores/batches.ts";

/** Jobs rows per SQLite transaction. */
const CHUNK = 500;
/** Documents stored in the object store at once. */
const CLAIMS_IN_FLIGHT = 8;

export function backpressure(message: string): ApiError {
  return new ApiError("backpressure", message, undefined, { "retry-after": "5" });
}

/**
 * Accepts a batch whole or not at all:
 * 0. every job's message must be able to fit NATS's max_payload once claim-checked, else 413;
 * 1. admission: the key's quotas must hold every job (Quotas, on the tokens estimated while the documents are
 *    still inline), else 429 `quota_exceeded`; DOCKET_JOBS must have room for every job (stream max_msgs −
 *    messages − jobs this producer is still publishing), else 429 `backpressure`; either way nothing is written;
 * 2. large documents go to the object store;
 * 3. the batch row (`validating`) and its jobs are written, one transaction per 500 jobs, yielding between;
 * 4. the batch turns `in_progress` and its jobs are published pipelined, rows marked as acks arrive (a job
 *    NATS refuses for its size is failed, job_too_large, and counted in the batch).
 * A producer that dies during 3 leaves a `validating` batch that start-up recovery empties and marks failed
 * (never published), releasing its Idempotency-Key for the client's retry; one that dies during 4 leaves
 * unpublished rows the publisher's sweep republishes.
 */
export class BatchIntake {
  private reserved = 0;

  constructor(
    private readonly batches: BatchStore,
    private readonly publisher: Publisher,
    private readonly documents: DocumentStore,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger,
    private readonly estimator: TokenEstimator,
    private readonly quotas: Quotas,
  ) {}

  async submit(
    id: string,
    options: BatchOptions,
    jobs: JobMessage[],
    createdAt: string,
    idempotency?: Idempotency,
    owner: string | null = null,
    expiresAt?: string,
  ): Promise<{ row: BatchRow; created: boolean }> {
    for (const [i, job] of jobs.entries()) this.documents.checkFits(job, `item ${i}`);
    const estimates = jobs.map((j) => this.estimator.estimate(j));
    const release = this.quotas.admit(owner, { jobs: jobs.length, tokens: estimates.reduce((n, e) => n + totalTokens(e), 0) });
    try {
      await this.admit(jobs.length);
      this.reserved += jobs.length;
      try {
        return await this.write({ id, options, jobs, estimates, createdAt, idempotency, owner, expiresAt });
      } finally {
        this.reserved -= jobs.length;
      }
    } finally {
      release();
    }
  }

  /** Refuses with 429 when DOCKET_JOBS cannot take `n` more jobs. */
  async admit(n: number): Promise<void> {
    const info = await this.jsm.streams.info(JOBS_STREAM);
    const max = info.config.max_msgs;
    if (max < 0) return;
    const room = max - info.state.messages - this.reserved;
    if (n > room)
      throw backpressure(
        `the job queue has room for ${Math.max(0, room)} jobs and this batch has ${n} (DOCKET_MAX_QUEUED_JOBS=${max}); retry later`,
      );
  }

  private async write({
    id,
    options,
    jobs,
    estimates,
    createdAt,
    idempotency,
    owner,
    expiresAt,
  }: {
    id: string;
    options: BatchOptions;
    jobs: JobMessage[];
    estimates: TokenEstimate[];
    createdAt: string;
    idempotency: Idempotency | undefined;
    owner: string | null;
    expiresAt?: string;
  }): Promise<{ row: BatchRow; created: boolean }> {
    // The key travels with each job: in a shared lane it picks the subject (Publisher), so workers share fairly.
    if (owner) for (const j of jobs) j.owner = owner;
    // Only what this intake stored is removed on failure: an uploaded document its jobs name is shared.
    const claimed: string[] = [];
    try {
      await pipelined(
        jobs.filter((j) => this.documents.needsRef(j)),
        CLAIMS_IN_FLIGHT,
        async (j) => {
          j.input = await this.documents.claim(j.id, j.input);
          claimed.push(j.id);
        },
      );
    } catch (err) {
      await Promise.all(claimed.map((name) => this.documents.remove(name)));
      throw new ApiError("unavailable", `could not store large documents: ${(err as Error).message}; retry later`);
    }

    const created = this.batches.create({
      id,
      lane: options.lane,
      task: options.task,
      params: options.params,
      total: jobs.length,
      idempotency,
      webhookUrl: options.webhookUrl,
      owner,
      createdAt,
      deadline: options.deadline ? new Date(options.deadline).toISOString() : undefined,
      expiresAt:
        expiresAt ??
        (options.completionWindow
          ? new Date(Date.parse(createdAt) + windowMs(options.completionWindow)).toISOString()
          : undefined),
    });
    if (!created) {
      await Promise.all(claimed.map((name) => this.documents.remove(name)));
      const existing = idempotency ? this.batches.byIdempotencyKey(idempotency.key) : undefined;
      if (!existing) throw new Error(`batch ${id} could not be created`);
      return { row: existing, created: false };
    }
    try {
      for (let i = 0; i < jobs.length; i += CHUNK) {
        this.batches.insertJobs(id, i, jobs.slice(i, i + CHUNK), owner, estimates.slice(i, i + CHUNK));
        await yieldToEventLoop();
      }
    } catch (err) {
      this.batches.discard(id);
      await Promise.all(claimed.map((name) => this.documents.remove(name)));
      throw err;
    }
    this.batches.markInProgress(id);
    const { published, failed, refused } = await this.publisher.publishMany(jobs);
    if (failed) this.log.warn({ batchId: id, published, failed }, "batch publish incomplete; the rest is republished");
    this.log.info({ batchId: id, jobs: jobs.length, published, refused, documentsStored: claimed.length }, "batch submitted");
    const row = this.batches.get(id);
    if (!row) throw new Error(`batch ${id} vanished`);
    return { row, created: true };
  }
}
