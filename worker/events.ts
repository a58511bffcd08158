import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type EventMessage, eventMsgId } from "../schema/event.ts";
import type { JobMessage } from "../schema/job.ts";
import { EVENTS_STREAM, type EventKind, subjects } from "../schema/subjects.ts";

const FINAL_KINDS = ["completed", "failed", "cancelled"] as const;
type FinalKind = (typeof FINAL_KINDS)[number];

type EventBody = Partial<Pick<EventMessage, "tokens" | "delta" | "offset" | "result" | "error">>;

/** Publishes a worker's events for one job attempt to DOCKET_EVENTS. */
export class EventPublisher {
  private readonly js: JetStreamClient;
  private jsm?: JetStreamManager;

  constructor(
    private readonly nc: NatsConnection,
    private readonly workerId: string,
  ) {
    this.js = jetstream(nc);
  }

  private message(job: JobMessage, attempt: number, kind: EventKind, body: EventBody): EventMessage {
    return {
      v: 1,
      jobId: job.id,
      kind,
      attempt,
      workerId: this.workerId,
      at: new Date().toISOString(),
      lane: job.lane,
      task: job.task,
      ...(job.model ? { model: job.model } : {}),
      ...(job.batchId ? { batchId: job.batchId } : {}),
      ...(job.customId ? { customId: job.customId } : {}),
      submittedAt: job.submittedAt,
      ...body,
    };
  }

  /** Resolves once JetStream has stored the event (deduplicated per job, kind and attempt). */
  async publish(job: JobMessage, attempt: number, kind: Exclude<EventKind, "progress">, body: EventBody = {}): Promise<void> {
    const event = this.message(job, attempt, kind, body);
    await this.js.publish(subjects.event(job.id, kind), JSON.stringify(event), { msgID: eventMsgId(event), timeout: 10_000 });
  }

  /**
   * The final event already stored for this job's current run (attempts from `sinceAttempt` on), if any: a
   * redelivered job whose worker died between storing its final event and acking the message is acked, not run
   * again. A retried job has final events of earlier runs: only the last event of each kind is read for its attempt.
   */
  async finalKind(jobId: string, sinceAttempt = 1): Promise<FinalKind | undefined> {
    this.jsm ??= await jetstreamManager(this.nc);
    const info = await this.jsm.streams.info(EVENTS_STREAM, { subjects_filter: subjects.jobEvents(jobId) });
    const kinds = new Set(Object.keys(info.state.subjects ?? {}).map((s) => s.slice(s.lastIndexOf(".") + 1)));
    for (const kind of FINAL_KINDS) {
      if (!kinds.has(kind)) continue;
      if (sinceAttempt <= 1) return kind;
      const last = await this.jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: subjects.event(jobId, kind) });
      if ((last?.json<EventMessage>().attempt ?? 0) >= sinceAttempt) return kind;
    }
    return undefined;
  }

  /** Fire-and-forget: a lost progress event costs nothing. */
  progress(job: JobMessage, attempt: number, tokens: number, text?: { delta: string; offset: number }): void {
    this.nc.publish(
      subjects.event(job.id, "progress"),
      JSON.stringify(this.message(job, attempt, "progress", { tokens, ...(text ?? {}) })),
    );
  }
}
