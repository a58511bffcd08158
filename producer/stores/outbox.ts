import type { RunResult } from "better-sqlite3";
import { and, asc, eq, isNotNull, lte, min } from "drizzle-orm";
import type { BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import type * as tables from "../../schema/tables.ts";
import { type BatchRow, type JobRow, type WebhookDeliveryRow, webhookDeliveries } from "../../schema/tables.ts";
import type { WebhookDeliveryView, WebhookEventType, WebhookPayload } from "../../schema/webhook.ts";
import type { Db } from "../db.ts";
import { newId } from "../ids.ts";
import { toBatchView } from "./batches.ts";
import { toView } from "./jobs.ts";

/** The database or a transaction on it: enqueue inside the transaction that changes the state it reports. */
export type DbOrTx = BaseSQLiteDatabase<"sync", RunResult, typeof tables>;

export interface WebhookEvent {
  type: WebhookEventType;
  url: string;
  jobId?: string;
  batchId?: string;
  /** The job or batch view the receiver gets as `data`. */
  data: Record<string, unknown>;
  at?: string;
  /**
   * Which run of the job or batch the event ends (a retry starts another): each run's event is queued once.
   * A job's runs are numbered by their first attempt, a batch's from 1.
   */
  run?: number;
}

/**
 * Queues one delivery of an event. Call it in the same transaction as the state change: the row then
 * exists exactly when the change does. An event is queued once (keyed by type, job or batch id, and run);
 * returns false for a repeat. Wake the dispatcher afterwards (Dispatcher.wake) to deliver at once.
 */
export function enqueueWebhook(db: DbOrTx, event: WebhookEvent): boolean {
  const at = event.at ?? new Date().toISOString();
  const subject = event.jobId ?? event.batchId;
  if (!subject) throw new Error("enqueueWebhook: a jobId or a batchId is required");
  const payload: WebhookPayload = { type: event.type, timestamp: at, data: event.data };
  const inserted = db
    .insert(webhookDeliveries)
    .values({
      id: newId("msg"),
      eventKey: `${event.type}:${subject}${event.run && event.run > 1 ? `:${event.run}` : ""}`,
      type: event.type,
      jobId: event.jobId ?? null,
      batchId: event.batchId ?? null,
      url: event.url,
      payload: JSON.stringify(payload),
      status: "pending",
      attempts: 0,
      nextAttemptAt: Date.now(),
      createdAt: at,
      updatedAt: at,
    })
    .onConflictDoNothing()
    .run();
  return inserted.changes > 0;
}

/** Queues job.<state> for a job (its row after the change) that has just reached a terminal state and names a webhook URL. */
export function enqueueJobWebhook(db: DbOrTx, row: JobRow, at: string): boolean {
  if (!row.webhookUrl || !(row.state === "succeeded" || row.state === "failed" || row.state === "cancelled")) return false;
  return enqueueWebhook(db, {
    type: `job.${row.state}`,
    url: row.webhookUrl,
    jobId: row.id,
    data: toView(row),
    at,
    run: row.firstAttempt,
  });
}

/** Queues batch.<state> for a batch (its row after the change) that has just ended and names a webhook URL. */
export function enqueueBatchWebhook(db: DbOrTx, batch: BatchRow | undefined, at: string): boolean {
  const { state } = batch ?? {};
  if (!batch?.webhookUrl || !(state === "completed" || state === "failed" || state === "cancelled" || state === "expired"))
    return false;
  return enqueueWebhook(db, {
    type: `batch.${state}`,
    url: batch.webhookUrl,
    batchId: batch.id,
    data: toBatchView(batch),
    at,
    run: batch.retries + 1,
  });
}

export interface RetrySchedule {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/**
 * Delay after the `attempts`-th failed attempt: base × 2^(attempts-1), capped, plus up to 25% jitter
 * (jitter only adds, so the nominal schedule is a lower bound: 30 attempts at 1 min..1 h span > 24 h).
 */
export function retryDelayMs(attempts: number, s: Pick<RetrySchedule, "baseMs" | "maxMs">, random = Math.random()): number {
  const nominal = Math.min(s.maxMs, s.baseMs * 2 ** Math.min(attempts - 1, 40));
  return Math.round(nominal * (1 + 0.25 * random));
}

export type AttemptOutcome =
  | { ok: true; statusCode: number }
  | { ok: false; statusCode?: number; error: string; retryAfterMs?: number; permanent?: boolean };

/** The webhook_deliveries table (the outbox): queueing is enqueueWebhook, delivery is the dispatcher's. */
export class Outbox {
  constructor(
    private readonly db: Db,
    private readonly schedule: RetrySchedule,
  ) {}

  /** Pending deliveries due by `now`, oldest first. */
  due(now: number, limit: number): WebhookDeliveryRow[] {
    return this.db
      .select()
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.status, "pending"), lte(webhookDeliveries.nextAttemptAt, now)))
      .orderBy(asc(webhookDeliveries.nextAttemptAt))
      .limit(limit)
      .all();
  }

  /** Epoch ms of the earliest pending attempt, if any. */
  nextDue(): number | undefined {
    const row = this.db
      .select({ at: min(webhookDeliveries.nextAttemptAt) })
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.status, "pending"), isNotNull(webhookDeliveries.nextAttemptAt)))
      .get();
    return row?.at ?? undefined;
  }

  /** Moves a pending row's next attempt to `until` while an attempt is in flight. */
  lease(id: string, until: number): void {
    this.db
      .update(webhookDeliveries)
      .set({ nextAttemptAt: until })
      .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, "pending")))
      .run();
  }

  /** Records one attempt: delivered, dead (permanent failure or attempts exhausted) or pending with the next time. */
  record(row: WebhookDeliveryRow, outcome: AttemptOutcome, now = Date.now()): WebhookDeliveryRow {
    const attempts = row.attempts + 1;
    const at = new Date(now).toISOString();
    const base = { attempts, lastStatusCode: outcome.statusCode ?? null, updatedAt: at };
    let set: Partial<WebhookDeliveryRow>;
    if (outcome.ok) set = { ...base, status: "delivered", nextAttemptAt: null, lastError: null, deliveredAt: at };
    else if (outcome.permanent || attempts >= this.schedule.maxAttempts) {
      set = { ...base, status: "dead", nextAttemptAt: null, lastError: outcome.error };
    } else {
      const delay = Math.max(retryDelayMs(attempts, this.schedule), Math.min(outcome.retryAfterMs ?? 0, this.schedule.maxMs));
      set = { ...base, status: "pending", nextAttemptAt: now + delay, lastError: outcome.error };
    }
    return this.db.update(webhookDeliveries).set(set).where(eq(webhookDeliveries.id, row.id)).returning().get()!;
  }

  forJob(jobId: string): WebhookDeliveryRow[] {
    return this.db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.jobId, jobId))
      .orderBy(asc(webhookDeliveries.createdAt))
      .all();
  }

  forBatch(batchId: string): WebhookDeliveryRow[] {
    return this.db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.batchId, batchId))
      .orderBy(asc(webhookDeliveries.createdAt))
      .all();
  }
}

export function toDeliveryView(row: WebhookDeliveryRow): WebhookDeliveryView {
  return {
    id: row.id,
    type: row.type,
    jobId: row.jobId,
    batchId: row.batchId,
    url: row.url,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.nextAttemptAt === null ? null : new Date(row.nextAttemptAt).toISOString(),
    lastStatusCode: row.lastStatusCode,
    lastError: row.lastError,
    createdAt: row.createdAt,
    deliveredAt: row.deliveredAt,
  };
}
