import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { TERMINAL_BATCH_STATES } from "../schema/batch.ts";
import type { EventMessage } from "../schema/event.ts";
import { TERMINAL_STATES } from "../schema/job.ts";
import { CONTROL_BUCKET, cancelKey, retriedFlag } from "../schema/subjects.ts";
import type { BatchRow, JobRow } from "../schema/tables.ts";
import { ApiError } from "./errors.ts";
import { pipelined, yieldToEventLoop } from "./pipeline.ts";
import type { ProducerEvents } from "./producer-events.ts";
import type { BatchStore } from "./stores/batches.ts";
import type { JobStore } from "./stores/jobs.ts";

const PAGE = 500;
const IN_FLIGHT = 256;

/**
 * Cancels jobs and batches. A cancel flag goes into the docket-control KV bucket first (a worker skips a
 * flagged job, or aborts it if running, and publishes `cancelled`); a queued job is then cancelled at
 * once by a `cancelled` event of the producer's own (ProducerEvents: the recorder, then DOCKET_EVENTS).
 */
export class Canceller {
  private readonly js: JetStreamClient;
  private kv?: Promise<KV>;

  constructor(
    nc: NatsConnection,
    private readonly events: ProducerEvents,
    private readonly jobs: JobStore,
    private readonly batches: BatchStore,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
  }

  async cancelJob(id: string): Promise<JobRow> {
    const row = this.jobs.get(id);
    if (!row) throw new ApiError("not_found", `no job with id ${id}`);
    if (TERMINAL_STATES.includes(row.state))
      throw new ApiError("conflict", `job ${id} is already ${row.state}; only queued or running jobs can be cancelled`);
    await this.flag([id]);
    if (row.state === "queued") await this.cancelQueued([row]);
    this.log.info({ jobId: id, state: row.state }, "job cancel requested");
    return this.jobs.get(id) ?? row;
  }

  async cancelBatch(id: string): Promise<BatchRow> {
    const batch = this.batches.get(id);
    if (!batch) throw new ApiError("not_found", `no batch with id ${id}`);
    if (TERMINAL_BATCH_STATES.includes(batch.state) || batch.state === "validating")
      throw new ApiError("conflict", `batch ${id} is ${batch.state}; only a batch in progress can be cancelled`);
    this.batches.requestCancel(id);
    const flagged = await this.cancelOpenJobs(id);
    this.log.info({ batchId: id, flagged }, "batch cancel requested");
    return this.batches.get(id) ?? batch;
  }

  /**
   * The batch's completion window ended with work left: its queued jobs are cancelled at once and its running ones
   * flagged, each ending `cancelled` with error `batch_expired` (the recorder's reading of an expiring batch), and
   * the batch ends `expired` with its last one.
   */
  async expireBatch(id: string): Promise<void> {
    this.batches.markExpired(id);
    const flagged = await this.cancelOpenJobs(id);
    this.log.info({ batchId: id, flagged }, "batch expired: its completion window ended");
  }

  /** Flags every queued and running job of the batch and cancels the queued ones, a page at a time. */
  private async cancelOpenJobs(id: string): Promise<number> {
    let after = -1;
    let flagged = 0;
    for (;;) {
      const page = this.batches.jobPage(id, ["queued", "running"], after, PAGE);
      if (page.length === 0) break;
      after = page.at(-1)?.batchIndex ?? after;
      await this.flag(page.map((j) => j.id));
      const queued = page
        .filter((j) => j.state === "queued")
        .map((j) => this.jobs.get(j.id))
        .filter((r) => r !== undefined);
      await this.cancelQueued(queued);
      flagged += page.length;
      await yieldToEventLoop();
    }
    return flagged;
  }

  /**
   * Lets retried jobs run from `attempt` on: a cancel flag of theirs (an expired batch's job) then cancels only
   * their earlier runs, whose messages may still be queued (a cancelled queued job's message stays in DOCKET_JOBS
   * until a worker pulls and skips it).
   */
  async allowRetries(retried: readonly { id: string; attempt: number }[]): Promise<void> {
    this.kv ??= new Kvm(this.js).open(CONTROL_BUCKET);
    const kv = await this.kv;
    await pipelined(retried, IN_FLIGHT, async ({ id, attempt }) => {
      if ((await kv.get(cancelKey(id)))?.operation === "PUT") await kv.put(cancelKey(id), retriedFlag(attempt));
    });
  }

  private async flag(ids: readonly string[]): Promise<void> {
    this.kv ??= new Kvm(this.js).open(CONTROL_BUCKET);
    const kv = await this.kv;
    await pipelined(ids, IN_FLIGHT, async (jobId) => {
      await kv.put(cancelKey(jobId), new Date().toISOString());
    });
  }

  /** One SQLite transaction for the page, then the events to DOCKET_EVENTS. */
  private async cancelQueued(rows: readonly JobRow[]): Promise<void> {
    const at = new Date().toISOString();
    const events: EventMessage[] = rows.map((r) => ({
      v: 1,
      jobId: r.id,
      kind: "cancelled",
      attempt: Math.max(1, r.attempts, r.firstAttempt),
      workerId: "producer",
      at,
    }));
    await this.events.apply(events);
  }
}
