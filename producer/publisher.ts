import { JetStreamApiError, type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { InvalidArgumentError, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import type { EventMessage } from "../schema/event.ts";
import { type JobMessage, jobMsgId } from "../schema/job.ts";
import { type DocumentStore, MessageTooLargeError } from "./documents.ts";
import { pipelined } from "./pipeline.ts";
import { type ProducerEvents, producerEvent } from "./producer-events.ts";
import type { Shares } from "./shares.ts";
import { type JobStore, rowToMessage } from "./stores/jobs.ts";

/** DOCKET_JOBS refused the message because it is full (max_msgs with discard new). */
export class QueueFullError extends Error {
  readonly code = "queue_full";
}

function isQueueFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && /maximum messages|maximum bytes|exceeded/i.test(err.message);
}

/** nats-server's JSStreamMessageExceedsMaximumErr: the stream's max_msg_size is below the message. */
const STREAM_MESSAGE_EXCEEDS_MAXIMUM = 10054;

/**
 * The message can never be published as it is: over max_payload (our measure, or the client's own check,
 * which throws InvalidArgumentError) or over the stream's max message size. Any other failure (timeout, no
 * responders while JetStream restarts, a full queue) may pass, and the row is tried again.
 */
function tooLarge(err: unknown): MessageTooLargeError | undefined {
  if (err instanceof MessageTooLargeError) return err;
  if (err instanceof InvalidArgumentError || (err instanceof JetStreamApiError && err.code === STREAM_MESSAGE_EXCEEDS_MAXIMUM))
    return new MessageTooLargeError(`NATS refused the job message: ${err.message}`);
  return undefined;
}

export interface PublisherOptions {
  /** A row unpublished for this long is the sweep's (younger ones may still have their first publish in flight). */
  republishAfterMs: number;
  sweepEveryMs: number;
  /** Rows read per page of a sweep. */
  sweepLimit: number;
  /** Publishes awaiting their acks at once. */
  inFlight: number;
}

const DEFAULT_OPTIONS: PublisherOptions = { republishAfterMs: 5_000, sweepEveryMs: 2_000, sweepLimit: 500, inFlight: 256 };

/** What a sweep did. */
export interface SweepResult {
  published: number;
  /** No row was left unpublished for a reason that may pass (false: the next sweep tries them again). */
  complete: boolean;
}

/** What one pass over a set of messages did. */
interface Outcome {
  published: number;
  /** Failed for a reason that may pass: left unpublished, for the sweep. */
  failed: number;
  /** Can never be published: failed with job_too_large. */
  refused: number;
}

/**
 * Publishes job messages with Nats-Msg-Id = job id (jobMsgId: JetStream drops a duplicate inside its window), each as
 * DocumentStore.wire() sizes it, and republishes rows whose publish was never acked. A row that can never
 * be published is failed where its owner sees it (job_too_large, through ProducerEvents: state, batch
 * counters, webhook); one that failed for a passing reason is tried again and never holds back the others.
 */
export class Publisher {
  private readonly js: JetStreamClient;
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<SweepResult>;
  private readonly options: PublisherOptions;

  constructor(
    nc: NatsConnection,
    private readonly store: JobStore,
    private readonly documents: DocumentStore,
    private readonly events: ProducerEvents,
    /** Picks each job's subject (its key's, in a shared lane). */
    private readonly shares: Shares,
    private readonly log: Logger,
    options: Partial<PublisherOptions> = {},
  ) {
    this.js = jetstream(nc);
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  /**
   * Publishes and marks the row published. Throws QueueFullError on backpressure, MessageTooLargeError when
   * the message can never be published (the caller decides: refuse the request, or fail the job), the NATS
   * error otherwise.
   */
  async publish(msg: JobMessage): Promise<void> {
    try {
      await this.send(msg);
    } catch (err) {
      if (isQueueFull(err)) throw new QueueFullError("DOCKET_JOBS is full");
      throw tooLarge(err) ?? err;
    }
    this.store.markPublished(msg.id);
  }

  /**
   * Publishes a batch's jobs with up to `inFlight` publishes awaiting their acks, marking rows published in
   * chunks as acks arrive. Stops issuing at the first failure that may pass (NATS went away: the sweep
   * republishes the rest); a job that can never be published is failed and the others go on.
   */
  async publishMany(msgs: readonly JobMessage[], inFlight = this.options.inFlight): Promise<Outcome> {
    return this.publishAll(msgs, inFlight, true);
  }

  /** DOCKET_JOBS was made anew: the per-key consumers are made again before the jobs are republished. */
  streamMadeAnew(): void {
    this.shares.forget();
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.options.sweepEveryMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Republishes rows left unpublished (the producer crashed, or NATS was down at submit time) once they are
   * republishAfterMs old, oldest first, a page at a time, past any row that fails. A page in which nothing went
   * through means NATS itself is unreachable: the pass ends there and the next one starts again from the oldest
   * row. A sweep under way is joined, not doubled.
   */
  sweep(): Promise<SweepResult> {
    this.sweeping ??= this.drain(this.options.republishAfterMs).finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /**
   * Republishes every unpublished row now, however recent: after DOCKET_JOBS was lost (JobStore.markLost) their
   * messages are gone, not in flight. Runs after a sweep under way, not inside it (that one skips recent rows).
   */
  async sweepNow(): Promise<SweepResult> {
    while (this.sweeping) await this.sweeping;
    this.sweeping = this.drain(0).finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async drain(minAgeMs: number): Promise<SweepResult> {
    const total: Outcome = { published: 0, failed: 0, refused: 0 };
    const before = new Date(Date.now() - minAgeMs).toISOString();
    for (let after: { submittedAt: string; id: string } | undefined; ; ) {
      const rows = this.store.unpublished(before, this.options.sweepLimit, after);
      if (rows.length === 0) break;
      after = rows.at(-1);
      const page = await this.publishAll(rows.map(rowToMessage), this.options.inFlight, false);
      total.published += page.published;
      total.failed += page.failed;
      total.refused += page.refused;
      if (page.published === 0 && page.refused === 0) break;
    }
    if (total.published || total.failed || total.refused) this.log.info(total, "republish sweep");
    return { published: total.published, complete: total.failed === 0 };
  }

  private async send(msg: JobMessage): Promise<void> {
    const data = await this.documents.wire(msg);
    await this.js.publish(await this.shares.subject(msg), data, { msgID: jobMsgId(msg), timeout: 5_000 });
  }

  private async publishAll(msgs: readonly JobMessage[], inFlight: number, stopAtFailure: boolean): Promise<Outcome> {
    const acked: string[] = [];
    const refused: { msg: JobMessage; err: MessageTooLargeError }[] = [];
    const outcome: Outcome = { published: 0, failed: 0, refused: 0 };
    const flush = () => {
      if (acked.length) this.store.markPublishedMany(acked.splice(0));
    };
    await pipelined(msgs, inFlight, async (msg) => {
      if (stopAtFailure && outcome.failed) {
        outcome.failed++;
        return;
      }
      try {
        await this.send(msg);
      } catch (err) {
        const permanent = tooLarge(err);
        if (permanent) refused.push({ msg, err: permanent });
        else if (outcome.failed++ === 0)
          this.log.warn({ jobId: msg.id, err: (err as Error).message }, "publish failed; will retry");
        return;
      }
      outcome.published++;
      acked.push(msg.id);
      if (acked.length >= 500) flush();
    });
    flush();
    outcome.refused = refused.length;
    if (refused.length) await this.refuse(refused);
    return outcome;
  }

  /** Fails jobs that can never be published, through the usual path (state, batch counters, webhook). */
  private async refuse(refused: readonly { msg: JobMessage; err: MessageTooLargeError }[]): Promise<void> {
    const at = new Date().toISOString();
    const events: EventMessage[] = refused.map(({ msg, err }) => {
      this.log.warn(
        { jobId: msg.id, batchId: msg.batchId, code: err.code, err: err.message },
        "job can never be published; failed",
      );
      return producerEvent(msg, "failed", msg.firstAttempt ?? 1, at, {
        code: err.code,
        message: err.message,
        retryable: false,
      });
    });
    await this.events.apply(events);
  }
}
