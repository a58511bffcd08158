import { and, asc, eq, isNull, lt } from "drizzle-orm";
import type { JobView } from "../schema/api.ts";
import type { JobMessage } from "../schema/job.ts";
import { type JobRow, jobs } from "../schema/tables.ts";
import type { Db } from "./db.ts";

/** The jobs table: the rows the API creates and shows. Event application lives in recorder.ts. */
export class JobStore {
  constructor(private readonly db: Db) {}

  /** Inserts the row for a job about to be published; returns the existing row for a known idempotency key. */
  insert(msg: JobMessage, idempotencyKey?: string, webhookUrl?: string): { row: JobRow; created: boolean } {
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
          updatedAt: msg.submittedAt,
        })
        .returning()
        .get();
      return { row, created: true };
    });
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
