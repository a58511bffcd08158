import { and, asc, desc, eq, gte, inArray, isNull, lt } from "drizzle-orm";
import type { JobView, ListJobsQuery } from "../../schema/api.ts";
import type { JobMessage } from "../../schema/job.ts";
import { type JobRow, jobs } from "../../schema/tables.ts";
import type { Db } from "../db.ts";

/** The jobs table: the rows the API creates and shows. Event application lives in recorder.ts. */
export class JobStore {
  constructor(private readonly db: Db) {}

  /** Inserts the row for a job about to be published; returns the existing row for a known idempotency key. */
  insert(
    msg: JobMessage,
    idempotencyKey?: string,
    webhookUrl?: string,
    owner: string | null = null,
  ): { row: JobRow; created: boolean } {
    return this.db.transaction((tx) => {
      if (idempotencyKey) {
        const existing = tx.select().from(jobs).where(eq(jobs.idempotencyKey, idempotencyKey)).get();
        if (existing) return { row: existing, created: false };
      }
      const row = tx
        .insert(jobs)
        .values({
          id: msg.id,
          lane: msg.lane,
          task: msg.task,
          state: "queued",
          input: msg.input,
          params: msg.params,
          batchId: msg.batchId ?? null,
          customId: msg.customId ?? null,
          idempotencyKey: idempotencyKey ?? null,
          submittedAt: msg.submittedAt,
          deadline: msg.deadline ?? null,
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
    const more = rows.length > q.limit;
    if (more) rows.pop();
    return { rows, nextCursor: more ? (rows.at(-1)?.id ?? null) : null };
  }

  /** Rows whose publish was never acked, oldest first, submitted before `before`. */
  unpublished(before: string, limit: number): JobRow[] {
    return this.db
      .select()
      .from(jobs)
      .where(and(isNull(jobs.publishedAt), eq(jobs.state, "queued"), lt(jobs.submittedAt, before)))
      .orderBy(asc(jobs.submittedAt))
      .limit(limit)
      .all();
  }
}

/** The wire message for a row: what was published, and what is republished. */
export function rowToMessage(row: JobRow): JobMessage {
  return {
    v: 1,
    id: row.id,
    lane: row.lane,
    task: row.task,
    input: row.input ?? {},
    params: row.params,
    ...(row.batchId ? { batchId: row.batchId } : {}),
    ...(row.customId ? { customId: row.customId } : {}),
    submittedAt: row.submittedAt,
    ...(row.deadline ? { deadline: row.deadline } : {}),
  };
}

export function toView(row: JobRow): JobView {
  return {
    id: row.id,
    state: row.state,
    lane: row.lane,
    task: row.task,
    batchId: row.batchId,
    customId: row.customId,
    attempts: row.attempts,
    submittedAt: row.submittedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    result: row.result ?? null,
    error: row.error ?? null,
    webhookUrl: row.webhookUrl,
  };
}
