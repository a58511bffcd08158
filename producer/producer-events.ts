import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { type EventMessage, eventMsgId } from "../schema/event.ts";
import { subjects } from "../schema/subjects.ts";
import type { Db } from "./db.ts";
import { pipelined } from "./pipeline.ts";
import type { Recorder } from "./recorder.ts";

const IN_FLIGHT = 256;

/** What a producer-made event repeats of its job (a row or a job message). */
interface EventJob {
  id: string;
  lane: NonNullable<EventMessage["lane"]>;
  task: NonNullable<EventMessage["task"]>;
  batchId?: string | null;
  customId?: string | null;
  submittedAt: string;
}

/** An event the producer writes about `job` (worker "producer"), carrying the job's lane, task, batch and custom id. */
export function producerEvent(
  job: EventJob,
  kind: EventMessage["kind"],
  attempt: number,
  at: string,
  error?: EventMessage["error"],
): EventMessage {
  return {
    v: 1,
    jobId: job.id,
    kind,
    attempt,
    workerId: "producer",
    at,
    lane: job.lane,
    task: job.task,
    ...(job.batchId ? { batchId: job.batchId } : {}),
    ...(job.customId ? { customId: job.customId } : {}),
    submittedAt: job.submittedAt,
    ...(error ? { error } : {}),
  };
}

/**
 * Events the producer itself decides, for jobs no worker will run: `cancelled` for a queued job (Canceller),
 * `failed` for one that can never be published (Publisher) or whose deadline passed in the queue (Deadlines),
 * `retried` for a job put back in the queue (Retrier). They take the usual path: applied through the
 * recorder in one SQLite transaction (job state, batch counters, webhooks queued), then logged to
 * DOCKET_EVENTS so the event log still rebuilds the database (best effort: SQLite already holds them).
 */
export class ProducerEvents {
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly db: Db,
    private readonly recorder: Recorder,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
  }

  async apply(events: readonly EventMessage[]): Promise<void> {
    this.db.transaction(() => this.record(events));
    await this.publish(events);
  }

  /** Applies the events through the recorder, in the caller's transaction (with the writes that go with them). */
  record(events: readonly EventMessage[]): void {
    for (const e of events) this.recorder.apply(e);
  }

  /** Logs events already recorded to DOCKET_EVENTS (best effort: SQLite holds them). */
  async publish(events: readonly EventMessage[]): Promise<void> {
    await pipelined(events, IN_FLIGHT, async (e) => {
      await this.js.publish(subjects.event(e.jobId, e.kind), JSON.stringify(e), { msgID: eventMsgId(e) }).catch((err) => {
        this.log.warn({ jobId: e.jobId, kind: e.kind, err: (err as Error).message }, "could not log the event to DOCKET_EVENTS");
      });
    });
  }
}
