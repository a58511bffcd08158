import type Database from "better-sqlite3";
import { eq } from "drizzle-orm";
import type { BatchResultLine, BatchState, BatchView } from "../../schema/batch.ts";
import type { JobMessage, JobState } from "../../schema/job.ts";
import { type BatchRow, batches } from "../../schema/tables.ts";
import type { OpenDatabase } from "../db.ts";

const COUNTER: Record<JobState, string> = {
  queued: "queued",
  running: "running",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
};

/** A batch's jobs rows, written in chunks, each chunk one transaction. */
export interface NewBatch {
  id: string;
  lane: BatchRow["lane"];
  task: BatchRow["task"];
  params: BatchRow["params"];
  total: number;
  idempotencyKey?: string;
  webhookUrl?: string;
  /** API key id (null: admin or auth off); its jobs get the same owner. */
  owner?: string | null;
  createdAt: string;
}

/**
 * The batches table. Counters move with their jobs' transitions (transition(), run inside the recorder's
 * transaction), and the state follows from the counters: in_progress until no job is queued or running,
 * then completed (or cancelled when a cancel was requested).
 */
export class BatchStore {
  private readonly sqlite: Database.Database;
  private readonly insertJob: Database.Statement;
  private readonly moves = new Map<string, Database.Statement>();
  private readonly settle: Database.Statement;
  private readonly page: Database.Statement;

  constructor(private readonly database: OpenDatabase) {
    this.sqlite = database.sqlite;
    this.insertJob = this.sqlite.prepare(
      `INSERT INTO jobs (id, lane, task, state, input, params, batch_id, batch_index, custom_id, owner, submitted_at, updated_at)
       VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.settle = this.sqlite.prepare(
      `UPDATE batches SET
         state = CASE WHEN queued + running = 0
                      THEN CASE WHEN cancel_requested_at IS NULL THEN 'completed' ELSE 'cancelled' END
                      WHEN cancel_requested_at IS NOT NULL THEN 'cancelling'
                      ELSE state END,
         finished_at = CASE WHEN queued + running = 0 THEN coalesce(finished_at, @at) ELSE finished_at END,
         updated_at = @at
       WHERE id = @id AND state IN ('in_progress', 'cancelling')`,
    );
    this.page = this.sqlite.prepare(
      `SELECT id, batch_index AS idx, custom_id AS customId, state, result, error FROM jobs
       WHERE batch_id = ? AND batch_index > ? ORDER BY batch_index LIMIT ?`,
    );
  }

  get(id: string): BatchRow | undefined {
    return this.database.db.select().from(batches).where(eq(batches.id, id)).get();
  }

  byIdempotencyKey(key: string): BatchRow | undefined {
    return this.database.db.select().from(batches).where(eq(batches.idempotencyKey, key)).get();
  }

  /** Inserts the batch row in state `validating`; returns false when its idempotency key is taken. */
  create(b: NewBatch): boolean {
    const r = this.sqlite
      .prepare(
        `INSERT INTO batches (id, state, lane, task, params, idempotency_key, webhook_url, owner, total, queued, created_at, updated_at)
         VALUES (?, 'validating', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`,
      )
      .run(
        b.id,
        b.lane,
        b.task,
        JSON.stringify(b.params),
        b.idempotencyKey ?? null,
        b.webhookUrl ?? null,
        b.owner ?? null,
        b.total,
        b.total,
        b.createdAt,
        b.createdAt,
      );
    return r.changes === 1;
  }

  /** One transaction for a chunk of the batch's jobs (prepared statement, no per-row query building). */
  insertJobs(batchId: string, firstIndex: number, msgs: readonly JobMessage[], owner: string | null = null): void {
    this.sqlite.transaction(() => {
      msgs.forEach((m, i) => {
        this.insertJob.run(
          m.id,
          m.lane,
          m.task,
          JSON.stringify(m.input),
          JSON.stringify(m.params),
          batchId,
          firstIndex + i,
          m.customId ?? null,
          owner,
          m.submittedAt,
          m.submittedAt,
        );
      });
    })();
  }

  markInProgress(id: string, at = new Date().toISOString()): void {
    this.sqlite
      .prepare(
        `UPDATE batches SET state = 'in_progress', in_progress_at = @at, updated_at = @at WHERE id = @id AND state = 'validating'`,
      )
      .run({ id, at });
  }

  /** Moves one job from `prev` to `next` in its batch's counters and settles the batch state. Idempotent per transition. */
  transition(batchId: string, prev: JobState, next: JobState, at: string): void {
    if (prev === next) return;
    const key = `${prev}>${next}`;
    let move = this.moves.get(key);
    if (!move) {
      move = this.sqlite.prepare(
        `UPDATE batches SET ${COUNTER[prev]} = ${COUNTER[prev]} - 1, ${COUNTER[next]} = ${COUNTER[next]} + 1 WHERE id = ?`,
      );
      this.moves.set(key, move);
    }
    move.run(batchId);
    this.settle.run({ id: batchId, at });
  }

  /** Ends a batch with no jobs to wait for (an OpenAI batch refused as a whole, or whose every request was refused). */
  close(
    id: string,
    state: "completed" | "failed",
    error?: { code: string; message: string },
    at = new Date().toISOString(),
  ): void {
    this.sqlite
      .prepare(
        `UPDATE batches SET state = @state, error = @error, in_progress_at = coalesce(in_progress_at, @at), finished_at = @at,
           updated_at = @at WHERE id = @id AND queued + running = 0`,
      )
      .run({ id, state, at, error: error ? JSON.stringify(error) : null });
  }

  /** Records a cancel request; the batch is `cancelling` until its last queued or running job ends. */
  requestCancel(id: string, at = new Date().toISOString()): void {
    this.sqlite
      .prepare(`UPDATE batches SET cancel_requested_at = coalesce(cancel_requested_at, @at), updated_at = @at WHERE id = @id`)
      .run({ id, at });
    this.settle.run({ id, at });
  }

  /** The batch's jobs in submission order, after `afterIndex`: pages for the results download. */
  results(batchId: string, afterIndex: number, limit: number): BatchResultLine[] {
    const rows = this.page.all(batchId, afterIndex, limit) as {
      id: string;
      idx: number;
      customId: string | null;
      state: string;
      result: string | null;
      error: string | null;
    }[];
    return rows.map((r) => ({
      index: r.idx,
      jobId: r.id,
      customId: r.customId,
      state: r.state,
      result: r.result ? JSON.parse(r.result) : null,
      error: r.error ? JSON.parse(r.error) : null,
    }));
  }

  /** Ids of the batch's jobs in `states`, a page at a time by submission order. */
  jobIds(
    batchId: string,
    states: readonly JobState[],
    afterIndex: number,
    limit: number,
  ): { id: string; idx: number; state: JobState }[] {
    const marks = states.map(() => "?").join(",");
    return this.sqlite
      .prepare(
        `SELECT id, batch_index AS idx, state FROM jobs WHERE batch_id = ? AND batch_index > ? AND state IN (${marks})
         ORDER BY batch_index LIMIT ?`,
      )
      .all(batchId, afterIndex, ...states, limit) as { id: string; idx: number; state: JobState }[];
  }

  /**
   * A producer that died while writing a batch left it `validating` with part of its jobs, none published
   * (publishing starts only once every row is written): those jobs are deleted and the batch marked failed,
   * so a batch is accepted whole or not at all.
   */
  recoverInterrupted(at = new Date().toISOString()): number {
    return this.sqlite.transaction(() => {
      const ids = this.sqlite.prepare(`SELECT id FROM batches WHERE state = 'validating'`).pluck().all() as string[];
      for (const id of ids) {
        this.sqlite.prepare(`DELETE FROM jobs WHERE batch_id = ?`).run(id);
        this.sqlite
          .prepare(
            `UPDATE batches SET state = 'failed', queued = 0, total = 0, finished_at = @at, updated_at = @at, error = @error WHERE id = @id`,
          )
          .run({
            id,
            at,
            error: JSON.stringify({
              code: "intake_interrupted",
              message: "the producer stopped while writing this batch; submit it again",
            }),
          });
      }
      return ids.length;
    })();
  }

  /** Removes a batch that could not be accepted (its jobs were never published). */
  discard(id: string): void {
    this.sqlite.transaction(() => {
      this.sqlite.prepare(`DELETE FROM jobs WHERE batch_id = ?`).run(id);
      this.sqlite.prepare(`DELETE FROM batches WHERE id = ?`).run(id);
    })();
  }
}

export function toBatchView(row: BatchRow): BatchView {
  const done = row.succeeded + row.failed + row.cancelled;
  return {
    id: row.id,
    object: "batch",
    state: row.state as BatchState,
    lane: row.lane,
    task: row.task,
    total: row.total,
    counts: { queued: row.queued, running: row.running, succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled },
    progress: { done, total: row.total },
    webhookUrl: row.webhookUrl,
    error: row.error ?? null,
    createdAt: row.createdAt,
    inProgressAt: row.inProgressAt,
    cancelRequestedAt: row.cancelRequestedAt,
    finishedAt: row.finishedAt,
  };
}
