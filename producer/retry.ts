import type { Logger } from "../runtime/log.ts";
import type { EventMessage } from "../schema/event.ts";
import { MAX_TOKENS_LIMIT } from "../schema/job.ts";
import type { BatchRow, JobRow } from "../schema/tables.ts";
import type { BatchIntake } from "./batch-intake.ts";
import type { Canceller } from "./cancel.ts";
import type { Db } from "./db.ts";
import { ApiError } from "./errors.ts";
import type { TokenEstimator } from "./estimate.ts";
import type { OpenAIBatches } from "./openai-batches.ts";
import { yieldToEventLoop } from "./pipeline.ts";
import { type ProducerEvents, producerEvent } from "./producer-events.ts";
import type { Publisher } from "./publisher.ts";
import type { Quotas } from "./quotas.ts";
import type { BatchStore } from "./stores/batches.ts";
import { isRetryable, type JobStore, rowToMessage } from "./stores/jobs.ts";

const PAGE = 500;

/** What a retry runs: the job's params with the remedy for its error applied, and its deadline. */
export interface RetryRun {
  params: JobRow["params"];
  deadline: string | null;
  maxTokens: number;
  /** What the remedy changed, for the log. */
  remedy?: string;
}

/**
 * The remedy a retry applies for each error code (docs/api.md, "Retry"); codes not listed run again as they were:
 * - document_too_long: the document is chunked (`params.overflow: "chunk"`, map-reduce);
 * - output_truncated: `params.maxTokens` doubles, up to `limit` (DOCKET_CONTEXT_SIZE, at most 32768);
 * - deadline_exceeded (and any deadline already passed): the deadline is dropped;
 * - batch_expired: the job runs again, and its batch gets a new completion window.
 */
export function remedy(
  row: Pick<JobRow, "params" | "deadline" | "error">,
  maxTokens: number,
  limit: number,
  now: number,
): RetryRun {
  const deadline = row.deadline && Date.parse(row.deadline) > now ? row.deadline : null;
  const dropped = row.deadline && !deadline ? "deadline dropped" : undefined;
  switch (row.error?.code) {
    case "document_too_long":
      return { params: { ...row.params, overflow: "chunk" }, deadline, maxTokens, remedy: "overflow: chunk" };
    case "output_truncated": {
      const doubled = Math.min(Math.max(maxTokens * 2, 1), Math.max(limit, maxTokens));
      return {
        params: { ...row.params, maxTokens: doubled },
        deadline,
        maxTokens: doubled,
        remedy: `maxTokens ${maxTokens} -> ${doubled}`,
      };
    }
    default:
      return { params: row.params, deadline, maxTokens, ...(dropped ? { remedy: dropped } : {}) };
  }
}

export interface RetrierDeps {
  db: Db;
  jobs: JobStore;
  batches: BatchStore;
  openaiBatches: Pick<OpenAIBatches, "discardFiles">;
  events: ProducerEvents;
  publisher: Publisher;
  canceller: Canceller;
  intake: Pick<BatchIntake, "admit">;
  quotas: Quotas;
  estimator: TokenEstimator;
  /** DOCKET_CONTEXT_SIZE: output_truncated's doubling stops there (a job cannot generate more than its context). */
  contextSize: number;
  log: Logger;
}

/**
 * Replays failed and expired jobs (POST /v1/jobs/:id/retry, /v1/batches/:id/retry) with the same inputs, as new
 * attempts of the same job: the attempt number goes on from the last (the job message carries it as
 * `firstAttempt`, its Nats-Msg-Id ends with it, so JetStream does not take it for the first publish's duplicate),
 * and job_events keeps every run. For each job, in one SQLite transaction: its batch reopens if it had ended, the
 * remedy is written to its params, and a `retried` event (ProducerEvents) puts it back in line `queued`, moving its
 * batch's counters from failed (or cancelled) to queued. Then its cancel flag, if any, is narrowed to the runs
 * before (an expired job's old message may still be queued), its message is published, and the event is logged.
 * Admission is whole or nothing: the key's quotas and DOCKET_JOBS' room for every job, before anything changes.
 */
export class Retrier {
  constructor(private readonly deps: RetrierDeps) {}

  async retryJob(row: JobRow): Promise<JobRow> {
    if (!isRetryable(row))
      throw new ApiError(
        "conflict",
        `job ${row.id} is ${row.state}${row.error ? ` (${row.error.code})` : ""}; only failed jobs and jobs of an expired batch can be retried`,
      );
    const batch = row.batchId ? this.deps.batches.get(row.batchId) : undefined;
    if (batch) checkBatchOpen(batch);
    const release = await this.admit(row.owner, 1, (row.estimatedPromptTokens ?? 0) + (row.maxTokens ?? 0));
    try {
      await this.run([row], batch);
    } finally {
      release();
    }
    return this.deps.jobs.get(row.id) ?? row;
  }

  /** Retries the batch's failed and expired jobs (`code`: only those with that error code); how many. */
  async retryBatch(batch: BatchRow, code?: string): Promise<{ batch: BatchRow; retried: number }> {
    checkBatchOpen(batch);
    const { jobs, tokens } = this.deps.jobs.retryableCount(batch.id, code);
    if (jobs === 0)
      throw new ApiError(
        "conflict",
        `batch ${batch.id} has no failed or expired jobs${code ? ` with error code ${code}` : ""} to retry`,
      );
    const release = await this.admit(batch.owner, jobs, tokens);
    let retried = 0;
    try {
      // Each page leaves the jobs it retried `queued`: the next page starts after the last one's index.
      let after = -1;
      for (let first = true; ; first = false) {
        const page = this.deps.jobs.retryablePage(batch.id, after, PAGE, code);
        if (page.length === 0) break;
        after = page.at(-1)?.batchIndex ?? after;
        await this.run(page, first ? batch : undefined);
        retried += page.length;
        await yieldToEventLoop();
      }
    } finally {
      release();
    }
    this.deps.log.info({ batchId: batch.id, retried, code }, "batch retried");
    return { batch: this.deps.batches.get(batch.id) ?? batch, retried };
  }

  private async admit(owner: string | null, jobs: number, tokens: number): Promise<() => void> {
    const release = this.deps.quotas.admit(owner, { jobs, tokens });
    try {
      await this.deps.intake.admit(jobs);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** One transaction for the rows (and the reopening of `batch` when it had ended), then flags, publishes, events. */
  private async run(rows: readonly JobRow[], batch: BatchRow | undefined): Promise<void> {
    const { db, jobs, batches, events, publisher, canceller, estimator, log } = this.deps;
    const now = Date.now();
    const at = new Date(now).toISOString();
    const retried: EventMessage[] = [];
    db.transaction(() => {
      if (batch && batch.state !== "in_progress") {
        // A batch that had a completion window gets one of the same length from now.
        const window = batch.expiresAt ? Date.parse(batch.expiresAt) - Date.parse(batch.createdAt) : undefined;
        batches.reopen(batch.id, at, window !== undefined ? new Date(now + window).toISOString() : undefined);
        this.deps.openaiBatches.discardFiles(batch.id);
      }
      for (const row of rows) {
        const limit = Math.min(MAX_TOKENS_LIMIT, this.deps.contextSize);
        const run = remedy(row, row.maxTokens ?? estimator.maxTokens(row.params), limit, now);
        jobs.setRunInputs(row.id, { params: run.params, deadline: run.deadline, maxTokens: run.maxTokens });
        const event = producerEvent(row, "retried", Math.max(row.attempts, row.firstAttempt) + 1, at);
        retried.push(event);
        log.info(
          { jobId: row.id, batchId: row.batchId, attempt: event.attempt, code: row.error?.code, remedy: run.remedy },
          "job retried",
        );
      }
      events.record(retried);
    });
    await canceller.allowRetries(retried.map((e) => ({ id: e.jobId, attempt: e.attempt })));
    const msgs = rows
      .map((r) => jobs.get(r.id))
      .filter((r): r is JobRow => r?.state === "queued")
      .map(rowToMessage);
    const { failed } = await publisher.publishMany(msgs);
    if (failed) log.warn({ jobs: msgs.length, failed }, "retried jobs not all published; the publisher's sweep republishes them");
    await events.publish(retried);
  }
}

/** A batch being cancelled, expiring or still being written cannot take retried jobs. */
function checkBatchOpen(batch: BatchRow): void {
  if (batch.state === "validating" || batch.state === "cancelling" || (batch.expiredAt && batch.state === "in_progress"))
    throw new ApiError(
      "conflict",
      `batch ${batch.id} is ${batch.expiredAt && batch.state === "in_progress" ? "expiring" : batch.state}; retry once it has ended`,
    );
}
