import { asc, eq } from "drizzle-orm";
import type { EventMessage } from "../../schema/event.ts";
import { jobEvents } from "../../schema/tables.ts";
import type { Db } from "../db.ts";

export type JobEventRow = typeof jobEvents.$inferSelect;

/** The job_events table: which (job, kind, attempt) the recorder has applied, its idempotence key. */
export class JobEventStore {
  constructor(private readonly db: Db) {}

  /** Records an event once (`code`: its error code, or the one a retry answers); false when this (job, kind, attempt) was recorded before. */
  add(event: EventMessage, streamSeq?: number, code?: string): boolean {
    const inserted = this.db
      .insert(jobEvents)
      .values({
        jobId: event.jobId,
        kind: event.kind,
        attempt: event.attempt,
        workerId: event.workerId,
        at: event.at,
        streamSeq: streamSeq ?? null,
        code: code ?? null,
      })
      .onConflictDoNothing()
      .run();
    return inserted.changes > 0;
  }

  /** A job's applied events in order. */
  forJob(jobId: string): Pick<JobEventRow, "kind" | "attempt" | "workerId" | "at" | "code">[] {
    return this.db
      .select({
        kind: jobEvents.kind,
        attempt: jobEvents.attempt,
        workerId: jobEvents.workerId,
        at: jobEvents.at,
        code: jobEvents.code,
      })
      .from(jobEvents)
      .where(eq(jobEvents.jobId, jobId))
      .orderBy(asc(jobEvents.at), asc(jobEvents.attempt))
      .all();
  }
}
