import { EventEmitter, on } from "node:events";
import { type ConsumerMessages, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { EventMessage } from "../schema/event.ts";
import { type JobState, TERMINAL_STATES } from "../schema/job.ts";
import { EVENTS_STREAM, RECORDER_CONSUMER } from "../schema/subjects.ts";
import type { JobRow } from "../schema/tables.ts";
import type { Db } from "./db.ts";
import type { BatchStore } from "./stores/batches.ts";
import { JobEventStore } from "./stores/job-events.ts";
import { JobStore } from "./stores/jobs.ts";
import { enqueueBatchWebhook, enqueueJobWebhook } from "./stores/outbox.ts";
import { UsageStore } from "./stores/usage.ts";

export interface JobChange {
  jobId: string;
  state: JobState;
  event: EventMessage;
}

/**
 * Applies events to SQLite, idempotently: (job, kind, attempt) is recorded once in job_events, and a
 * terminal state is left only by a `retried` event (a new run, from the attempt after the last): events of an
 * earlier run are kept in job_events but change nothing. A job first seen through its events gets a row all the same.
 * A job's end adds its usage to its key's day (usage_daily) in the same transaction.
 * Given the batch store, a batch job's change moves its batch's counters (BatchStore.follow) in the same
 * transaction. Webhooks are queued in that transaction too: job.<state> when a job with a webhook URL
 * ends, batch.<state> when the change ended a batch with one.
 * Emits "change" (JobChange) after each applied event and "progress" (EventMessage) for progress events.
 */
export class Recorder extends EventEmitter {
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private readonly jobs: JobStore;
  private readonly events: JobEventStore;
  private readonly usage: UsageStore;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly batches?: BatchStore,
  ) {
    super();
    this.jobs = new JobStore(db);
    this.events = new JobEventStore(db);
    this.usage = new UsageStore(db);
    this.setMaxListeners(0);
  }

  /**
   * Returns the job's state after the event, or undefined when the event changed nothing: a duplicate, or
   * any event for a job already in a final state. "change" is emitted exactly when this returns a state.
   */
  apply(event: EventMessage, streamSeq?: number): JobState | undefined {
    if (event.kind === "progress") {
      this.emit("progress", event);
      return undefined;
    }
    const state = this.db.transaction(() => {
      const seen = this.jobs.get(event.jobId);
      const error = event.error ?? (event.kind === "cancelled" && seen ? this.expiry(seen) : null);
      const code = event.kind === "retried" ? seen?.error?.code : error?.code;
      if (!this.events.add(event, streamSeq, code)) return undefined;

      const row = seen ?? this.jobs.insertSeen(event);
      // Another attempt's final event after the job ended (a redelivery whose first ack was lost) is kept in
      // job_events but changes nothing: a job finishes once per run, in SQLite and in every listener's count.
      // Only a retry (from a later attempt) leaves a final state, and then nothing of the runs before it applies.
      const ended = TERMINAL_STATES.includes(row.state);
      const applies =
        event.kind === "retried" ? ended && event.attempt > row.attempts : !ended && event.attempt >= row.firstAttempt;
      if (!applies) return undefined;

      const common = { attempt: event.attempt, workerId: event.workerId, at: event.at };
      let changed: JobRow | undefined;
      switch (event.kind) {
        case "started":
          changed = this.jobs.record(event.jobId, { ...common, state: "running", startedAt: row.startedAt ?? event.at });
          break;
        case "completed":
          changed = this.jobs.record(event.jobId, {
            ...common,
            state: "succeeded",
            result: event.result ?? null,
            error: null,
            finishedAt: event.at,
          });
          break;
        case "failed":
          changed = this.jobs.record(event.jobId, {
            ...common,
            state: "failed",
            error: event.error ?? null,
            finishedAt: event.at,
          });
          break;
        case "cancelled":
          changed = this.jobs.record(event.jobId, {
            ...common,
            state: "cancelled",
            error,
            finishedAt: event.at,
          });
          break;
        case "retried":
          changed = this.jobs.record(event.jobId, {
            ...common,
            state: "queued",
            firstAttempt: event.attempt,
            queuedAt: event.at,
            publishedAt: null,
            startedAt: null,
            finishedAt: null,
            result: null,
            error: null,
          });
          break;
      }
      const next = changed?.state ?? row.state;
      // Same transaction as the state change: one delivery row exactly when the job or its batch ended.
      if (next !== row.state && row.batchId && this.batches) {
        this.batches.follow(row, next, event.at, seen === undefined);
        enqueueBatchWebhook(this.db, this.batches.get(row.batchId), event.at);
      }
      if (changed?.webhookUrl && TERMINAL_STATES.includes(next)) enqueueJobWebhook(this.db, changed, event.at);
      if (changed && (next === "succeeded" || next === "failed")) this.usage.add(changed, event.at);
      return next;
    });
    if (state) {
      this.log.debug(
        { jobId: event.jobId, batchId: event.batchId, kind: event.kind, attempt: event.attempt, state },
        "event recorded",
      );
      this.emit("change", { jobId: event.jobId, state, event } satisfies JobChange);
    }
    return state;
  }

  /**
   * Why a job of an expiring batch was cancelled: its batch's completion window ended (a running job's worker
   * reports a plain `cancelled` when it sees the flag).
   */
  private expiry(row: JobRow): { code: string; message: string; retryable: boolean } | null {
    const batch = row.batchId ? this.batches?.get(row.batchId) : undefined;
    if (!batch?.expiredAt) return null;
    return {
      code: "batch_expired",
      message: `batch ${batch.id} expired at ${batch.expiredAt} (its completion window ended) before this request finished`,
      retryable: false,
    };
  }

  /** Consumes DOCKET_EVENTS through the durable docket-recorder consumer until stop(). */
  async start(nc: NatsConnection): Promise<void> {
    const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, RECORDER_CONSUMER);
    // expires paces how soon a lost consumer, once provisioned again (JetStreamWatch), is pulled from: after a
    // reconnect nats.js checks for it and, not finding it, waits `expires` to look again (default 30 s).
    this.messages = await consumer.consume({ max_messages: 512, expires: 5_000 });
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) {
        let event: EventMessage;
        try {
          event = EventMessage.parse(m.json());
        } catch {
          this.log.warn({ subject: m.subject, seq: m.seq }, "invalid event message; terminated");
          m.term("invalid event message");
          continue;
        }
        try {
          this.apply(event, m.seq);
          m.ack();
        } catch (err) {
          this.log.error(
            { jobId: event.jobId, batchId: event.batchId, err: (err as Error).message },
            "could not record event; will retry",
          );
          m.nak(1_000);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
  }

  /** Resolves with the job's state once it is one of `states`; `current` is read first to avoid a race. */
  async waitFor(
    jobId: string,
    states: readonly JobState[],
    current: () => JobState | undefined,
    timeoutMs = 30_000,
  ): Promise<JobState> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    try {
      const changes = on(this, "change", { signal: ac.signal }) as AsyncIterableIterator<[JobChange]>;
      const now = current();
      if (now && states.includes(now)) {
        await changes.return?.();
        return now;
      }
      for await (const [change] of changes) {
        if (change.jobId === jobId && states.includes(change.state)) return change.state;
      }
      throw new Error("recorder closed");
    } catch (err) {
      if (ac.signal.aborted) throw new Error(`job ${jobId} did not reach ${states.join("|")} within ${timeoutMs} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
