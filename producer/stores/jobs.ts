import { and, asc, count, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, or, type SQLWrapper, sql } from "drizzle-orm";
import type { JobView, ListJobsQuery } from "../../schema/api.ts";
import type { EventMessage } from "../../schema/event.ts";
import type { JobMessage, JobState } from "../../schema/job.ts";
import { type JobRow, jobs } from "../../schema/tables.ts";
import type { Db } from "../db.ts";
import type { TokenEstimate } from "../estimate.ts";
import type { Idempotency } from "../idempotency.ts";
import { buildJobMessage } from "../job-message.ts";
import { page } from "./page.ts";

/** A job of a batch as its pages show it (results, output files, cancel): every column but the input. */
export type BatchJobRow = Pick<
  JobRow,
  "id" | "batchIndex" | "customId" | "state" | "params" | "result" | "error" | "submittedAt"
> & { batchIndex: number; ocrPages: number[] | null };

/** What the recorder writes when it applies an event to a job. */
export type JobChangeSet = Pick<
  Partial<JobRow>,
  "state" | "startedAt" | "result" | "error" | "finishedAt" | "firstAttempt" | "queuedAt" | "publishedAt"
> & {
  attempt: number;
  workerId: string;
  at: string;
};

/**
 * The jobs table, every query on it: the rows the API creates and shows, the recorder's writes (which
 * events apply is the recorder's rule), a batch's jobs, and the counts the dashboard and metrics show.
 */
export class JobStore {
  private readonly insertBatchJob;

  constructor(private readonly db: Db) {
    // Batch intake writes thousands of rows: one prepared statement, run per row inside a chunk's transaction.
    const p = (name: string) => sql.placeholder(name);
    this.insertBatchJob = db
      .insert(jobs)
      .values({
        id: p("id"),
        lane: p("lane"),
        task: p("task"),
        model: p("model"),
        state: "queued",
        input: p("input"),
        params: p("params"),
        batchId: p("batchId"),
        batchIndex: p("batchIndex"),
        customId: p("customId"),
        owner: p("owner"),
        submittedAt: p("submittedAt"),
        deadline: p("deadline"),
        queuedAt: p("submittedAt"),
        estimatedPromptTokens: p("promptTokens"),
        maxTokens: p("maxTokens"),
        updatedAt: p("submittedAt"),
      })
      .prepare();
  }

  /**
   * Inserts the row for a job about to be published; returns the existing row for a known idempotency key.
   * `estimate` (TokenEstimator) is taken before a large document is claim-checked out of the message.
   */
  insert(
    msg: JobMessage,
    idempotency?: Idempotency,
    webhookUrl?: string,
    owner: string | null = null,
    estimate?: TokenEstimate,
  ): { row: JobRow; created: boolean } {
    return this.db.transaction((tx) => {
      if (idempotency) {
        const existing = tx.select().from(jobs).where(eq(jobs.idempotencyKey, idempotency.key)).get();
        if (existing) return { row: existing, created: false };
      }
      const row = tx
        .insert(jobs)
        .values({
          id: msg.id,
          lane: msg.lane,
          task: msg.task,
          model: msg.model ?? null,
          state: "queued",
          input: msg.input,
          params: msg.params,
          batchId: msg.batchId ?? null,
          customId: msg.customId ?? null,
          idempotencyKey: idempotency?.key ?? null,
          idempotencyFingerprint: idempotency?.fingerprint ?? null,
          submittedAt: msg.submittedAt,
          deadline: msg.deadline ?? null,
          queuedAt: msg.submittedAt,
          estimatedPromptTokens: estimate?.promptTokens ?? null,
          maxTokens: estimate?.maxTokens ?? msg.params.maxTokens ?? null,
          webhookUrl: webhookUrl ?? null,
          owner,
          updatedAt: msg.submittedAt,
        })
        .returning()
        .get();
      return { row, created: true };
    });
  }

  byIdempotencyKey(key: string): JobRow | undefined {
    return this.db.select().from(jobs).where(eq(jobs.idempotencyKey, key)).get();
  }

  get(id: string): JobRow | undefined {
    return this.db.select().from(jobs).where(eq(jobs.id, id)).get();
  }

  delete(id: string): void {
    this.db.delete(jobs).where(eq(jobs.id, id)).run();
  }

  markPublished(id: string, at = new Date().toISOString()): void {
    this.db
      .update(jobs)
      .set({ publishedAt: at })
      .where(and(eq(jobs.id, id), isNull(jobs.publishedAt)))
      .run();
  }

  markPublishedMany(ids: readonly string[], at = new Date().toISOString()): void {
    if (ids.length === 0) return;
    this.db
      .update(jobs)
      .set({ publishedAt: at })
      .where(and(inArray(jobs.id, [...ids]), isNull(jobs.publishedAt)))
      .run();
  }

  /** Newest first; `cursor` is the last id of the previous page (ids are time-ordered). `owner` unset: every job. */
  list(q: ListJobsQuery, owner?: string): { rows: JobRow[]; nextCursor: string | null } {
    const where = and(
      owner !== undefined ? eq(jobs.owner, owner) : undefined,
      q.state ? eq(jobs.state, q.state) : undefined,
      q.batchId ? eq(jobs.batchId, q.batchId) : undefined,
      q.task ? eq(jobs.task, q.task) : undefined,
      q.model ? eq(jobs.model, q.model) : undefined,
      q.createdAfter ? gte(jobs.submittedAt, new Date(q.createdAfter).toISOString()) : undefined,
      q.createdBefore ? lt(jobs.submittedAt, new Date(q.createdBefore).toISOString()) : undefined,
      q.cursor ? lt(jobs.id, q.cursor) : undefined,
    );
    const rows = this.db
      .select()
      .from(jobs)
      .where(where)
      .orderBy(desc(jobs.id))
      .limit(q.limit + 1)
      .all();
    const { rows: pageRows, hasMore } = page(rows, q.limit);
    return { rows: pageRows, nextCursor: hasMore ? (pageRows.at(-1)?.id ?? null) : null };
  }

  /** One transaction for a chunk of a batch's jobs, `firstIndex` the chunk's position in the batch. */
  insertBatchJobs(
    batchId: string,
    firstIndex: number,
    msgs: readonly JobMessage[],
    owner: string | null,
    estimates?: readonly TokenEstimate[],
  ): void {
    this.db.transaction(() => {
      msgs.forEach((m, i) => {
        const estimate = estimates?.[i];
        this.insertBatchJob.run({
          id: m.id,
          lane: m.lane,
          task: m.task,
          model: m.model ?? null,
          input: m.input,
          params: m.params,
          batchId,
          batchIndex: firstIndex + i,
          customId: m.customId ?? null,
          owner,
          submittedAt: m.submittedAt,
          deadline: m.deadline ?? null,
          promptTokens: estimate?.promptTokens ?? null,
          maxTokens: estimate?.maxTokens ?? m.params.maxTokens ?? null,
        });
      });
    });
  }

  deleteBatchJobs(batchId: string): void {
    this.db.delete(jobs).where(eq(jobs.batchId, batchId)).run();
  }

  /** A batch's jobs after `afterIndex` in submission order, in `states` when given: one page. */
  batchPage(batchId: string, afterIndex: number, limit: number, states?: readonly JobState[]): BatchJobRow[] {
    return this.db
      .select({
        id: jobs.id,
        batchIndex: sql<number>`${jobs.batchIndex}`,
        customId: jobs.customId,
        state: jobs.state,
        params: jobs.params,
        result: jobs.result,
        error: jobs.error,
        submittedAt: jobs.submittedAt,
        ocrPages: sql<number[] | null>`json_extract(${jobs.input}, '$.ocrPages')`.mapWith((v: string | null) =>
          v ? (JSON.parse(v) as number[]) : null,
        ),
      })
      .from(jobs)
      .where(
        and(eq(jobs.batchId, batchId), gt(jobs.batchIndex, afterIndex), states ? inArray(jobs.state, [...states]) : undefined),
      )
      .orderBy(asc(jobs.batchIndex))
      .limit(limit)
      .all();
  }

  /** The row for a job first seen through its events (published by another NATS client, or before a restore). */
  insertSeen(event: EventMessage): JobRow {
    return this.db
      .insert(jobs)
      .values({
        id: event.jobId,
        lane: event.lane ?? "default",
        task: event.task ?? "summarize",
        model: event.model ?? null,
        state: "queued",
        params: {},
        batchId: event.batchId ?? null,
        customId: event.customId ?? null,
        submittedAt: event.submittedAt ?? event.at,
        queuedAt: event.submittedAt ?? event.at,
        publishedAt: event.at,
        updatedAt: event.at,
      })
      .returning()
      .get();
  }

  /** Applies one event's change; attempts only grow (events of an earlier attempt may arrive late). */
  record(id: string, { attempt, workerId, at, ...change }: JobChangeSet): JobRow | undefined {
    return this.db
      .update(jobs)
      .set({ ...change, attempts: sql`max(${jobs.attempts}, ${attempt})`, workerId, updatedAt: at })
      .where(eq(jobs.id, id))
      .returning()
      .get();
  }

  /**
   * Queued jobs of `lane` ahead of `place` in its line (queued earlier; at once, an earlier item of a batch or a
   * smaller id), and their work.
   */
  ahead(lane: JobRow["lane"], place: QueuePlace): QueuedWork {
    return this.db
      .select(WORK)
      .from(jobs)
      .where(and(eq(jobs.state, "queued"), eq(jobs.lane, lane), earlier(place)))
      .get() as QueuedWork;
  }

  /**
   * Queued jobs of one key (`owner`; null: the admin's, or auth off) in a shared lane ahead of `place` in the key's
   * own line: its jobs with a deadline first (when it is a key's: they wait on its docket-due consumer), then the
   * rest, each in the order they were queued.
   */
  aheadOfOwner(lane: JobRow["lane"], owner: string | null, place: QueuePlace): QueuedWork {
    const ofOwner = owner === null ? isNull(jobs.owner) : eq(jobs.owner, owner);
    const dueFirst = owner !== null;
    const sameClass = !dueFirst ? undefined : place.due ? isNotNull(jobs.deadline) : isNull(jobs.deadline);
    const line = dueFirst && !place.due ? or(isNotNull(jobs.deadline), earlier(place)) : earlier(place);
    return this.db
      .select(WORK)
      .from(jobs)
      .where(and(eq(jobs.state, "queued"), eq(jobs.lane, lane), ofOwner, dueFirst && place.due ? sameClass : undefined, line))
      .get() as QueuedWork;
  }

  /** Queued jobs of a lane and their work, per key (null: the admin's, or auth off). */
  queuedByOwner(lane: JobRow["lane"]): (QueuedWork & { owner: string | null })[] {
    return this.db
      .select({ owner: jobs.owner, ...WORK })
      .from(jobs)
      .where(and(eq(jobs.state, "queued"), eq(jobs.lane, lane)))
      .groupBy(jobs.owner)
      .all();
  }

  /** Queued and running jobs per lane, and their estimated work. */
  openWork(): (QueuedWork & { state: JobState; lane: JobRow["lane"] })[] {
    return this.db
      .select({ state: jobs.state, lane: jobs.lane, ...WORK })
      .from(jobs)
      .where(inArray(jobs.state, ["queued", "running"]))
      .groupBy(jobs.state, jobs.lane)
      .all();
  }

  /** A batch's queued jobs: their work, and the first and the last of them in line. */
  batchQueue(batchId: string): (QueuedWork & { first: QueuedJob; last: QueuedJob }) | undefined {
    const queued = and(eq(jobs.batchId, batchId), eq(jobs.state, "queued"));
    const place = {
      queuedAt: sql<string>`coalesce(${jobs.queuedAt}, ${jobs.submittedAt})`,
      batchIndex: sql<number>`coalesce(${jobs.batchIndex}, -1)`,
      id: jobs.id,
      due: sql<boolean>`${jobs.deadline} is not null`.mapWith(Boolean),
      promptTokens: sql<number>`coalesce(${jobs.estimatedPromptTokens}, 0)`,
      maxTokens: sql<number>`coalesce(${jobs.maxTokens}, 0)`,
    };
    // The first in line (asc) or the last (desc).
    const end = (dir: typeof asc) =>
      this.db
        .select(place)
        .from(jobs)
        .where(queued)
        .orderBy(dir(jobs.queuedAt), dir(jobs.batchIndex), dir(jobs.id))
        .limit(1)
        .get();
    const first = end(asc);
    const last = end(desc);
    if (!first || !last) return undefined;
    return { ...(this.db.select(WORK).from(jobs).where(queued).get() as QueuedWork), first, last };
  }

  /** Queued jobs whose deadline is before `now` (ISO), soonest first: the producer fails them. */
  overdue(now: string, limit: number): JobRow[] {
    return this.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.state, "queued"), isNotNull(jobs.deadline), lt(jobs.deadline, now)))
      .orderBy(asc(jobs.deadline))
      .limit(limit)
      .all();
  }

  /** An API key's open work: its queued jobs, and the estimated tokens of its queued and running ones. */
  ownerLoad(owner: string): { queued: number; tokens: number } {
    const r = this.db
      .select({
        queued: sql<number>`coalesce(sum(${jobs.state} = 'queued'), 0)`,
        tokens: sql<number>`coalesce(sum(coalesce(${jobs.estimatedPromptTokens}, 0) + coalesce(${jobs.maxTokens}, 0)), 0)`,
      })
      .from(jobs)
      .where(and(eq(jobs.owner, owner), inArray(jobs.state, ["queued", "running"])))
      .get();
    return { queued: r?.queued ?? 0, tokens: r?.tokens ?? 0 };
  }

  /**
   * A retry's new inputs (the remedy applied to params, a passed deadline dropped), written before its `retried`
   * event puts the job back in line.
   */
  setRunInputs(id: string, run: Pick<JobRow, "params" | "deadline" | "maxTokens">): void {
    this.db.update(jobs).set(run).where(eq(jobs.id, id)).run();
  }

  /**
   * A batch's jobs a retry runs again (retryable: failed, or cancelled by its batch's expiry), whose error code is
   * `code` when given: how many, and their estimated tokens.
   */
  retryableCount(batchId: string, code?: string): { jobs: number; tokens: number } {
    const r = this.db
      .select({
        jobs: count(),
        tokens: sql<number>`coalesce(sum(coalesce(${jobs.estimatedPromptTokens}, 0) + coalesce(${jobs.maxTokens}, 0)), 0)`,
      })
      .from(jobs)
      .where(and(eq(jobs.batchId, batchId), retryableWhere(code)))
      .get();
    return { jobs: r?.jobs ?? 0, tokens: r?.tokens ?? 0 };
  }

  /** A page of those jobs in submission order, after `afterIndex`. */
  retryablePage(batchId: string, afterIndex: number, limit: number, code?: string): JobRow[] {
    return this.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.batchId, batchId), gt(jobs.batchIndex, afterIndex), retryableWhere(code)))
      .orderBy(asc(jobs.batchIndex))
      .limit(limit)
      .all();
  }

  /**
   * What recent succeeded jobs tell about the estimates: the share of their token budget they generated, and their
   * estimated prompt tokens per generated token (the prompt mix the workers' tokens/s was measured on).
   */
  recentCalibration(limit = 200): { fill: number; mix: number } | undefined {
    const recent = this.db
      .select({
        completion: sql<number>`coalesce(json_extract(${jobs.result}, '$.usage.completionTokens'), 0)`.as("completion"),
        budget: sql<number>`coalesce(${jobs.maxTokens}, 0)`.as("budget"),
        prompt: sql<number>`coalesce(${jobs.estimatedPromptTokens}, 0)`.as("prompt"),
      })
      .from(jobs)
      .where(and(eq(jobs.state, "succeeded"), isNotNull(jobs.maxTokens)))
      .orderBy(desc(jobs.finishedAt))
      .limit(limit)
      .as("recent");
    const r = this.db
      .select({
        completion: sql<number>`coalesce(sum(${recent.completion}), 0)`,
        budget: sql<number>`coalesce(sum(${recent.budget}), 0)`,
        prompt: sql<number>`coalesce(sum(${recent.prompt}), 0)`,
      })
      .from(recent)
      .get();
    if (!r?.completion || !r.budget) return undefined;
    return { fill: Math.min(1, r.completion / r.budget), mix: r.prompt / r.completion };
  }

  /** Recent succeeded jobs' generated tokens per second of run time (one sequence's speed), if any ran. */
  recentSequenceRate(limit = 50): number | undefined {
    const r = this.db
      .select({
        tokens: sql<number | null>`sum(json_extract(${jobs.result}, '$.usage.completionTokens'))`,
        ms: sql<number | null>`sum(json_extract(${jobs.result}, '$.timings.runMs'))`,
      })
      .from(
        this.db
          .select({ result: jobs.result })
          .from(jobs)
          .where(eq(jobs.state, "succeeded"))
          .orderBy(desc(jobs.finishedAt))
          .limit(limit)
          .as("recent"),
      )
      .get();
    return r?.tokens && r.ms ? (r.tokens * 1000) / r.ms : undefined;
  }

  /** Jobs per state and lane (only pairs that have jobs). */
  countByStateAndLane(): { state: JobState; lane: JobRow["lane"]; n: number }[] {
    return this.db.select({ state: jobs.state, lane: jobs.lane, n: count() }).from(jobs).groupBy(jobs.state, jobs.lane).all();
  }

  /** Jobs per state (only states that have jobs). */
  countByState(): Partial<Record<JobState, number>> {
    const out: Partial<Record<JobState, number>> = {};
    for (const r of this.db.select({ state: jobs.state, n: count() }).from(jobs).groupBy(jobs.state).all()) out[r.state] = r.n;
    return out;
  }

  /**
   * Jobs as the dashboard lists them, without input or output. With `batchId`: that batch's in submission order,
   * after `afterIndex`; otherwise the most recently submitted first. `states` and `errorCode` narrow the list.
   */
  summaries(filter: JobSummaryFilter, limit: number): JobSummary[] {
    const { batchId, states, errorCode, afterIndex } = filter;
    const q = this.db
      .select({
        id: jobs.id,
        state: jobs.state,
        lane: jobs.lane,
        task: jobs.task,
        model: jobs.model,
        batchId: jobs.batchId,
        batchIndex: jobs.batchIndex,
        customId: jobs.customId,
        title: sql<string | null>`json_extract(${jobs.input}, '$.title')`,
        errorCode: sql<string | null>`json_extract(${jobs.error}, '$.code')`,
        attempts: jobs.attempts,
        workerId: jobs.workerId,
        submittedAt: jobs.submittedAt,
        startedAt: jobs.startedAt,
        finishedAt: jobs.finishedAt,
        updatedAt: jobs.updatedAt,
      })
      .from(jobs)
      .where(
        and(
          batchId !== undefined ? eq(jobs.batchId, batchId) : undefined,
          batchId !== undefined && afterIndex !== undefined ? gt(jobs.batchIndex, afterIndex) : undefined,
          states?.length ? inArray(jobs.state, [...states]) : undefined,
          errorCode !== undefined ? sql`json_extract(${jobs.error}, '$.code') = ${errorCode}` : undefined,
        ),
      );
    return (
      batchId !== undefined ? q.orderBy(asc(jobs.batchIndex), asc(jobs.id)) : q.orderBy(desc(jobs.submittedAt), desc(jobs.id))
    )
      .limit(limit)
      .all();
  }

  /**
   * Failed jobs by error code: how many in all, how many finished since `since`, and when the last one did. One
   * pass over the failed rows (the state index), newest code first.
   */
  failuresByCode(since: string): FailureCount[] {
    const code = sql<string>`coalesce(json_extract(${jobs.error}, '$.code'), 'unknown')`;
    return this.db
      .select({
        code,
        count: count(),
        recent: sql<number>`coalesce(sum(${jobs.finishedAt} >= ${since}), 0)`,
        lastAt: sql<string | null>`max(${jobs.finishedAt})`,
        retryable: sql<number | null>`max(json_extract(${jobs.error}, '$.retryable'))`,
      })
      .from(jobs)
      .where(eq(jobs.state, "failed"))
      .groupBy(code)
      .orderBy(desc(sql`max(${jobs.finishedAt})`))
      .all()
      .map((r) => ({ ...r, retryable: r.retryable === 1 }));
  }

  /**
   * Queue wait (submitted to started) and run time (started to finished), in ms, of the last `limit` succeeded
   * jobs (the state index, walked backwards: newest rows first), with their lane.
   */
  latencies(limit: number): { lane: JobRow["lane"]; queueMs: number; runMs: number }[] {
    const ms = (from: SQLWrapper, to: SQLWrapper) => sql<number>`(julianday(${to}) - julianday(${from})) * 86400000.0`;
    return this.db
      .select({ lane: jobs.lane, queueMs: ms(jobs.submittedAt, jobs.startedAt), runMs: ms(jobs.startedAt, jobs.finishedAt) })
      .from(jobs)
      .where(and(eq(jobs.state, "succeeded"), isNotNull(jobs.startedAt), isNotNull(jobs.finishedAt)))
      .orderBy(sql`rowid desc`)
      .limit(limit)
      .all();
  }

  /** Queued jobs per model they name (null: the default model), only models that have some. */
  queuedByModel(): { model: string | null; n: number }[] {
    return this.db.select({ model: jobs.model, n: count() }).from(jobs).where(eq(jobs.state, "queued")).groupBy(jobs.model).all();
  }

  /**
   * DOCKET_JOBS was lost with the messages in it: every job not yet finished is marked unpublished, so the
   * publisher's sweep publishes it again. A running job too: if its worker is gone, nothing else would redeliver it
   * (if it is alive, the job runs twice and the recorder keeps the first final event).
   */
  markLost(): LostJobs {
    const open = and(inArray(jobs.state, ["queued", "running"]), isNotNull(jobs.publishedAt));
    const hasInput = sql<number>`${jobs.input} is not null`;
    const counts = this.db
      .select({ state: jobs.state, hasInput, n: count() })
      .from(jobs)
      .where(open)
      .groupBy(jobs.state, hasInput)
      .all();
    this.db
      .update(jobs)
      .set({ publishedAt: null })
      .where(and(open, isNotNull(jobs.input)))
      .run();
    const lost: LostJobs = { queued: 0, running: 0, unknown: 0 };
    for (const c of counts) {
      if (!c.hasInput) lost.unknown += c.n;
      else if (c.state === "queued") lost.queued += c.n;
      else lost.running += c.n;
    }
    return lost;
  }

  /**
   * Rows whose message JetStream does not hold, submitted before `before`, oldest first (a page after `after`):
   * their publish was never acked, or DOCKET_JOBS was lost since (markLost).
   */
  unpublished(before: string, limit: number, after?: Pick<JobRow, "submittedAt" | "id">): JobRow[] {
    return this.db
      .select()
      .from(jobs)
      .where(
        and(
          isNull(jobs.publishedAt),
          inArray(jobs.state, ["queued", "running"]),
          isNotNull(jobs.input),
          lt(jobs.submittedAt, before),
          after
            ? or(gt(jobs.submittedAt, after.submittedAt), and(eq(jobs.submittedAt, after.submittedAt), gt(jobs.id, after.id)))
            : undefined,
        ),
      )
      .orderBy(asc(jobs.submittedAt), asc(jobs.id))
      .limit(limit)
      .all();
  }
}

/** Which jobs JobStore.summaries lists. */
export interface JobSummaryFilter {
  batchId?: string;
  /** With batchId: jobs after this position in the batch (the previous page's last batchIndex). */
  afterIndex?: number;
  states?: readonly JobState[];
  /** Failed jobs with this error code. */
  errorCode?: string;
}

/** A job as the dashboard lists it: its ids, file name, state and times, no input or output. */
export type JobSummary = Pick<
  JobRow,
  | "id"
  | "state"
  | "lane"
  | "task"
  | "model"
  | "batchId"
  | "batchIndex"
  | "customId"
  | "attempts"
  | "workerId"
  | "submittedAt"
  | "startedAt"
  | "finishedAt"
  | "updatedAt"
> & {
  /** The document's title: the file name for uploaded files. */
  title: string | null;
  errorCode: string | null;
};

/** Failed jobs with one error code. */
export interface FailureCount {
  code: string;
  count: number;
  /** Of them, those that finished since the time asked about. */
  recent: number;
  lastAt: string | null;
  /** One of them at least was marked retryable by its worker. */
  retryable: boolean;
}

/** Jobs whose message was in a DOCKET_JOBS that is gone, by the state SQLite holds; `unknown`: no input to republish. */
export interface LostJobs {
  queued: number;
  running: number;
  /** Jobs seen only through their events (published by another NATS client): SQLite lacks their input. */
  unknown: number;
}

/** The error code of a job that was cancelled because its batch expired: it may be retried like a failed one. */
export const BATCH_EXPIRED = "batch_expired";

/** Failed jobs, and those cancelled by their batch's expiry; with `code`, those whose error has that code. */
function retryableWhere(code?: string) {
  const errorCode = sql`json_extract(${jobs.error}, '$.code')`;
  return and(
    or(eq(jobs.state, "failed"), and(eq(jobs.state, "cancelled"), sql`${errorCode} = ${BATCH_EXPIRED}`)),
    code !== undefined ? sql`${errorCode} = ${code}` : undefined,
  );
}

/** Whether a retry may run the job again (the rule retryableWhere applies in SQL). */
export const isRetryable = (row: Pick<JobRow, "state" | "error">): boolean =>
  row.state === "failed" || (row.state === "cancelled" && row.error?.code === BATCH_EXPIRED);

/** A job's place in its lane's line: when it was queued, then its index in its batch (-1: none), then its id. */
export interface QueuePlace {
  queuedAt: string;
  batchIndex: number;
  id: string;
  /** It has a deadline: in its key's line it is among the jobs served first. */
  due?: boolean;
}

/** Jobs queued before `place` (queued earlier; at once, an earlier item of a batch or a smaller id). */
function earlier(place: QueuePlace) {
  const index = sql`coalesce(${jobs.batchIndex}, -1)`;
  return or(
    lt(jobs.queuedAt, place.queuedAt),
    and(
      eq(jobs.queuedAt, place.queuedAt),
      or(sql`${index} < ${place.batchIndex}`, and(sql`${index} = ${place.batchIndex}`, lt(jobs.id, place.id))),
    ),
  );
}

/** A queued job's place and estimated tokens. */
export type QueuedJob = QueuePlace & { promptTokens: number; maxTokens: number };

/** Jobs and their estimated tokens (TokenEstimate summed). */
export interface QueuedWork {
  jobs: number;
  promptTokens: number;
  maxTokens: number;
}

const WORK = {
  jobs: count(),
  promptTokens: sql<number>`coalesce(sum(${jobs.estimatedPromptTokens}), 0)`,
  maxTokens: sql<number>`coalesce(sum(${jobs.maxTokens}), 0)`,
};

/** The wire message for a row: what was published, and what is republished. */
export function rowToMessage(row: JobRow): JobMessage {
  const { id, lane, task, model, owner, params, batchId, customId, submittedAt, deadline, firstAttempt } = row;
  return buildJobMessage({
    id,
    lane,
    task,
    model,
    owner,
    input: row.input ?? {},
    params,
    batchId,
    customId,
    submittedAt,
    deadline,
    firstAttempt,
  });
}

/** The API's view of a job; `waiting` says why a queued job does not start (WorkerRegistry.waiting). */
export function toView(row: JobRow, waiting?: string): JobView {
  return {
    id: row.id,
    state: row.state,
    lane: row.lane,
    task: row.task,
    model: row.model,
    ...(waiting ? { waiting } : {}),
    batchId: row.batchId,
    customId: row.customId,
    attempts: row.attempts,
    submittedAt: row.submittedAt,
    deadline: row.deadline,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    result: row.result ?? null,
    error: row.error ?? null,
    webhookUrl: row.webhookUrl,
    ...(row.input?.ocrPages?.length ? { ocrPages: row.input.ocrPages } : {}),
  };
}
