import { EventEmitter, on } from "node:events";
import { type ConsumerMessages, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { eq, sql } from "drizzle-orm";
import type { Logger } from "../runtime/log.ts";
import { EventMessage } from "../schema/event.ts";
import { type JobState, TERMINAL_STATES } from "../schema/job.ts";
import { EVENTS_STREAM, RECORDER_CONSUMER } from "../schema/subjects.ts";
import { type JobRow, jobEvents, jobs } from "../schema/tables.ts";
import type { Db } from "./db.ts";
import { enqueueJobWebhook } from "./stores/outbox.ts";

/**
 * Called inside the recorder's SQLite transaction when a known job changes state, so state derived
 * from jobs (batch counters) commits or rolls back with the change itself.
 */
export type TransitionHook = (row: JobRow, next: JobState, at: string) => void;

export interface JobChange {
  jobId: string;
  state: JobState;
  event: EventMessage;
}

/**
 * Applies events to SQLite, idempotently: (job, kind, attempt) is recorded once in job_events, and a
 * terminal state is never left. A job first seen through its events gets a row all the same.
 * Emits "change" (JobChange) after each applied event and "progress" (EventMessage) for progress events.
 */
export class Recorder extends EventEmitter {
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private readonly transitionHooks: TransitionHook[] = [];

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
  }

  onTransition(hook: TransitionHook): void {
    this.transitionHooks.push(hook);
  }

  /** Returns the job's state after the event, or undefined when the event changed nothing (a duplicate). */
  apply(event: EventMessage, streamSeq?: number): JobState | undefined {
    if (event.kind === "progress") {
      this.emit("progress", event);
      return undefined;
    }
    const state = this.db.transaction((tx) => {
      const inserted = tx
        .insert(jobEvents)
        .values({
          jobId: event.jobId,
          kind: event.kind,
          attempt: event.attempt,
          workerId: event.workerId,
          at: event.at,
          streamSeq: streamSeq ?? null,
        })
        .onConflictDoNothing()
        .run();
      if (inserted.changes === 0) return undefined;

      let row = tx.select().from(jobs).where(eq(jobs.id, event.jobId)).get();
      const known = row !== undefined;
      if (!row) {
        row = tx
          .insert(jobs)
          .values({
            id: event.jobId,
            lane: event.lane ?? "default",
            task: event.task ?? "summarize",
            state: "queued",
            params: {},
            batchId: event.batchId ?? null,
            customId: event.customId ?? null,
            submittedAt: event.submittedAt ?? event.at,
            publishedAt: event.at,
            updatedAt: event.at,
          })
          .returning()
          .get();
      }
      if (TERMINAL_STATES.includes(row.state)) return row.state;

      const common = { attempts: sql`max(${jobs.attempts}, ${event.attempt})`, workerId: event.workerId, updatedAt: event.at };
      let next: JobState = row.state;
      switch (event.kind) {
        case "started":
          next = "running";
          tx.update(jobs)
            .set({ ...common, state: next, startedAt: row.startedAt ?? event.at })
            .where(eq(jobs.id, event.jobId))
            .run();
          break;
        case "completed":
          next = "succeeded";
          tx.update(jobs)
            .set({ ...common, state: next, result: event.result ?? null, error: null, finishedAt: event.at })
            .where(eq(jobs.id, event.jobId))
            .run();
          break;
        case "failed":
          next = "failed";
          tx.update(jobs)
            .set({ ...common, state: next, error: event.error ?? null, finishedAt: event.at })
            .where(eq(jobs.id, event.jobId))
            .run();
          break;
        case "cancelled":
          next = "cancelled";
          tx.update(jobs)
            .set({ ...common, state: next, finishedAt: event.at })
            .where(eq(jobs.id, event.jobId))
            .run();
          break;
      }
      if (known && next !== row.state) for (const hook of this.transitionHooks) hook(row, next, event.at);
      // Same transaction as the terminal state: one delivery row exactly when the state changed.
      if (row.webhookUrl && TERMINAL_STATES.includes(next)) enqueueJobWebhook(tx, event.jobId, event.at);
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

  /** Consumes DOCKET_EVENTS through the durable docket-recorder consumer until stop(). */
  async start(nc: NatsConnection): Promise<void> {
    const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, RECORDER_CONSUMER);
    this.messages = await consumer.consume({ max_messages: 512 });
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
