import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import type { BatchResultLine, BatchState, BatchView } from "../../schema/batch.ts";
import type { JobMessage, JobState } from "../../schema/job.ts";
import { type BatchRow, batches, type JobRow } from "../../schema/tables.ts";
import type { Db } from "../db.ts";
import type { TokenEstimate } from "../estimate.ts";
import type { Idempotency } from "../idempotency.ts";
import { type BatchJobRow, JobStore } from "./jobs.ts";

/** A batch about to be written: its row first (create), then its jobs in chunks (insertJobs). */
export interface NewBatch {
  id: string;
  lane: BatchRow["lane"];
  task: BatchRow["task"];
  params: BatchRow["params"];
  total: number;
  idempotency?: Idempotency;
  webhookUrl?: string;
  /** API key id (null: admin or auth off); its jobs get the same owner. */
  owner?: string | null;
  createdAt: string;
  /** UTC ISO time its jobs carry as their deadline. */
  deadline?: string;
  /** End of its completion window (OpenAI batches). */
  expiresAt?: string;
}

/**
 * The batches table. Counters move with their jobs' transitions (transition(), run inside the recorder's
 * transaction), and the state follows from the counters: in_progress until no job is queued or running,
 * then completed (or cancelled when a cancel was requested, expired when its completion window ended first).
 * The counters are the one source of a batch's
 * progress: the batch API, the OpenAI batch object and the dashboard all read them (batchProgress).
 * A batch's jobs rows are the JobStore's; this store reaches them through it.
 */
export class BatchStore {
  private readonly moves = new Map<string, { run(values: { id: string }): unknown }>();
  private readonly settle;

  constructor(
    private readonly db: Db,
    private readonly jobs = new JobStore(db),
  ) {
    const idle = sql`${batches.queued} + ${batches.running} = 0`;
    const at = sql.placeholder("at");
    this.settle = db
      .update(batches)
      .set({
        state: sql`CASE WHEN ${idle}
                        THEN CASE WHEN ${batches.expiredAt} IS NOT NULL THEN 'expired'
                                  WHEN ${batches.cancelRequestedAt} IS NOT NULL THEN 'cancelled'
                                  ELSE 'completed' END
                        WHEN ${batches.cancelRequestedAt} IS NOT NULL AND ${batches.expiredAt} IS NULL THEN 'cancelling'
                        ELSE ${batches.state} END`,
        finishedAt: sql`CASE WHEN ${idle} THEN coalesce(${batches.finishedAt}, ${at}) ELSE ${batches.finishedAt} END`,
        updatedAt: sql`${at}`,
      })
      .where(and(eq(batches.id, sql.placeholder("id")), inArray(batches.state, ["in_progress", "cancelling"])))
      .prepare();
  }

  get(id: string): BatchRow | undefined {
    return this.db.select().from(batches).where(eq(batches.id, id)).get();
  }

  byIdempotencyKey(key: string): BatchRow | undefined {
    return this.db.select().from(batches).where(eq(batches.idempotencyKey, key)).get();
  }

  /** The most recently created batches, newest first. */
  recent(limit: number): BatchRow[] {
    return this.db.select().from(batches).orderBy(desc(batches.createdAt), desc(batches.id)).limit(limit).all();
  }

  /** Inserts the batch row in state `validating`; returns false when its idempotency key is taken. */
  create(b: NewBatch): boolean {
    const r = this.db
      .insert(batches)
      .values({
        id: b.id,
        state: "validating",
        lane: b.lane,
        task: b.task,
        params: b.params,
        idempotencyKey: b.idempotency?.key ?? null,
        idempotencyFingerprint: b.idempotency?.fingerprint ?? null,
        webhookUrl: b.webhookUrl ?? null,
        owner: b.owner ?? null,
        deadline: b.deadline ?? null,
        expiresAt: b.expiresAt ?? null,
        total: b.total,
        queued: b.total,
        createdAt: b.createdAt,
        updatedAt: b.createdAt,
      })
      .onConflictDoNothing({ target: batches.idempotencyKey })
      .run();
    return r.changes === 1;
  }

  /** One transaction for a chunk of the batch's jobs (one prepared statement, no per-row query building). */
  insertJobs(
    batchId: string,
    firstIndex: number,
    msgs: readonly JobMessage[],
    owner: string | null = null,
    estimates?: readonly TokenEstimate[],
  ): void {
    this.jobs.insertBatchJobs(batchId, firstIndex, msgs, owner, estimates);
  }

  markInProgress(id: string, at = new Date().toISOString()): void {
    this.db
      .update(batches)
      .set({ state: "in_progress", inProgressAt: at, updatedAt: at })
      .where(and(eq(batches.id, id), eq(batches.state, "validating")))
      .run();
  }

  /** Called by the recorder inside its transaction when a batch job changes state: a job first seen through its events joins its batch, then the counters move. */
  follow(job: JobRow, next: JobState, at: string, firstSeen: boolean): void {
    const { batchId } = job;
    if (!batchId) return;
    if (firstSeen) this.adopt({ ...job, batchId }, at);
    this.transition(batchId, job.state, next, at);
  }

  /**
   * Counts a job first seen through its events (published by another NATS client with a batchId) in its
   * batch, creating the batch row on its first job, as the recorder creates the job's row: every batch the
   * jobs name has counters. Such a batch's total is the jobs seen so far, so it may end and reopen.
   */
  private adopt(job: JobRow & { batchId: string }, at: string): void {
    const reopen = sql`${batches.state} = 'completed'`;
    this.db
      .insert(batches)
      .values({
        id: job.batchId,
        state: "in_progress",
        lane: job.lane,
        task: job.task,
        params: {},
        total: 1,
        queued: 1,
        createdAt: job.submittedAt,
        inProgressAt: at,
        updatedAt: at,
      })
      .onConflictDoUpdate({
        target: batches.id,
        set: {
          total: sql`${batches.total} + 1`,
          queued: sql`${batches.queued} + 1`,
          state: sql`CASE WHEN ${reopen} THEN 'in_progress' ELSE ${batches.state} END`,
          finishedAt: sql`CASE WHEN ${reopen} THEN NULL ELSE ${batches.finishedAt} END`,
          updatedAt: at,
        },
      })
      .run();
  }

  /** Moves one job from `prev` to `next` in its batch's counters and settles the batch state. Idempotent per transition. */
  transition(batchId: string, prev: JobState, next: JobState, at: string): void {
    if (prev === next) return;
    const key = `${prev}>${next}`;
    let move = this.moves.get(key);
    if (!move) {
      move = this.db
        .update(batches)
        .set({ [prev]: sql`${batches[prev]} - 1`, [next]: sql`${batches[next]} + 1` })
        .where(eq(batches.id, sql.placeholder("id")))
        .prepare();
      this.moves.set(key, move);
    }
    move.run({ id: batchId });
    this.settle.run({ id: batchId, at });
  }

  /** Ends a batch with no jobs to wait for (an OpenAI batch refused as a whole, or whose every request was refused). */
  close(
    id: string,
    state: "completed" | "failed",
    error?: { code: string; message: string },
    at = new Date().toISOString(),
  ): void {
    this.db
      .update(batches)
      .set({
        state,
        error: error ?? null,
        inProgressAt: sql`coalesce(${batches.inProgressAt}, ${at})`,
        finishedAt: at,
        updatedAt: at,
      })
      .where(and(eq(batches.id, id), sql`${batches.queued} + ${batches.running} = 0`))
      .run();
  }

  /** Records a cancel request; the batch is `cancelling` until its last queued or running job ends. */
  requestCancel(id: string, at = new Date().toISOString()): void {
    this.db
      .update(batches)
      .set({ cancelRequestedAt: sql`coalesce(${batches.cancelRequestedAt}, ${at})`, updatedAt: at })
      .where(eq(batches.id, id))
      .run();
    this.settle.run({ id, at });
  }

  /**
   * Batches in progress whose completion window ended before `now` (ISO): not expiring yet, or expiring with jobs
   * still queued (a producer that stopped half-way through cancelling them left them so).
   */
  dueToExpire(now: string, limit: number): BatchRow[] {
    return this.db
      .select()
      .from(batches)
      .where(
        and(
          inArray(batches.state, ["in_progress", "cancelling"]),
          isNotNull(batches.expiresAt),
          lt(batches.expiresAt, now),
          or(isNull(batches.expiredAt), gt(batches.queued, 0)),
        ),
      )
      .orderBy(asc(batches.expiresAt))
      .limit(limit)
      .all();
  }

  /** Records that the batch's window ended with work left: it ends `expired` once its last open job has ended. */
  markExpired(id: string, at = new Date().toISOString()): void {
    this.db
      .update(batches)
      .set({ expiredAt: sql`coalesce(${batches.expiredAt}, ${at})`, updatedAt: at })
      .where(eq(batches.id, id))
      .run();
    this.settle.run({ id, at });
  }

  /**
   * Opens an ended batch again for a retry of its jobs (the jobs' `retried` events then move its counters): a
   * new run, with its own end and webhook; a completion window starts again (`expiresAt`).
   */
  reopen(id: string, at: string, expiresAt?: string): void {
    this.db
      .update(batches)
      .set({
        state: "in_progress",
        finishedAt: null,
        cancelRequestedAt: null,
        expiredAt: null,
        retries: sql`${batches.retries} + 1`,
        ...(expiresAt ? { expiresAt } : {}),
        updatedAt: at,
      })
      .where(and(eq(batches.id, id), inArray(batches.state, ["completed", "expired", "cancelled"])))
      .run();
  }

  /** The batch's jobs in submission order, after `afterIndex`: pages for the results download. */
  results(batchId: string, afterIndex: number, limit: number): BatchResultLine[] {
    return this.jobs.batchPage(batchId, afterIndex, limit).map((r) => ({
      index: r.batchIndex,
      jobId: r.id,
      customId: r.customId,
      state: r.state,
      result: r.result ?? null,
      error: r.error ?? null,
      ...(r.ocrPages?.length ? { ocrPages: r.ocrPages } : {}),
    }));
  }

  /** The batch's jobs in `states`, a page at a time by submission order: pages for cancel and the OpenAI files. */
  jobPage(batchId: string, states: readonly JobState[], afterIndex: number, limit: number): BatchJobRow[] {
    return this.jobs.batchPage(batchId, afterIndex, limit, states);
  }

  /**
   * A producer that died while writing a batch left it `validating` with part of its jobs, none published
   * (publishing starts only once every row is written): those jobs are deleted and the batch marked failed,
   * so a batch is accepted whole or not at all. Its Idempotency-Key is released: the client's retry of the
   * same POST (the body is gone with the process, so nothing here can finish it) creates the batch anew
   * instead of getting this empty failure back.
   */
  recoverInterrupted(at = new Date().toISOString()): number {
    return this.db.transaction(() => {
      const ids = this.db.select({ id: batches.id }).from(batches).where(eq(batches.state, "validating")).all();
      for (const { id } of ids) {
        this.jobs.deleteBatchJobs(id);
        this.db
          .update(batches)
          .set({
            state: "failed",
            queued: 0,
            total: 0,
            idempotencyKey: null,
            idempotencyFingerprint: null,
            finishedAt: at,
            updatedAt: at,
            error: {
              code: "intake_interrupted",
              message:
                "the producer stopped while writing this batch; submit it again (the same Idempotency-Key creates it anew)",
            },
          })
          .where(eq(batches.id, id))
          .run();
      }
      return ids.length;
    });
  }

  /** Removes a batch that could not be accepted (its jobs were never published). */
  discard(id: string): void {
    this.db.transaction(() => {
      this.jobs.deleteBatchJobs(id);
      this.db.delete(batches).where(eq(batches.id, id)).run();
    });
  }
}

/** A batch's progress from its counters: the one reading the API, the OpenAI object and the dashboard share. */
export function batchProgress(row: BatchRow): { counts: Record<JobState, number>; done: number; total: number } {
  const counts = {
    queued: row.queued,
    running: row.running,
    succeeded: row.succeeded,
    failed: row.failed,
    cancelled: row.cancelled,
  };
  return { counts, done: counts.succeeded + counts.failed + counts.cancelled, total: row.total };
}

export function toBatchView(row: BatchRow): BatchView {
  const { counts, done, total } = batchProgress(row);
  return {
    id: row.id,
    object: "batch",
    state: row.state as BatchState,
    lane: row.lane,
    task: row.task,
    total: row.total,
    counts,
    progress: { done, total },
    webhookUrl: row.webhookUrl,
    error: row.error ?? null,
    createdAt: row.createdAt,
    inProgressAt: row.inProgressAt,
    cancelRequestedAt: row.cancelRequestedAt,
    finishedAt: row.finishedAt,
    deadline: row.deadline,
    expiresAt: row.expiresAt,
    expiredAt: row.expiredAt,
  };
}
