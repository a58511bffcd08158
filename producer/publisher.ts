import { JetStreamApiError, type JetStreamClient, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import type { JobMessage } from "../schema/job.ts";
import { subjects } from "../schema/subjects.ts";
import { pipelined } from "./pipeline.ts";
import { type JobStore, rowToMessage } from "./stores/jobs.ts";

/** DOCKET_JOBS refused the message because it is full (max_msgs with discard new). */
export class QueueFullError extends Error {
  readonly code = "queue_full";
}

function isQueueFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && /maximum messages|maximum bytes|exceeded/i.test(err.message);
}

/**
 * Publishes job messages with Nats-Msg-Id = job id (JetStream drops a duplicate inside its window) and
 * republishes rows whose publish was never acked, until it is.
 */
export class Publisher {
  private readonly js: JetStreamClient;
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    nc: NatsConnection,
    private readonly store: JobStore,
    private readonly log: Logger,
    private readonly options = { republishAfterMs: 5_000, sweepEveryMs: 2_000, sweepLimit: 500 },
  ) {
    this.js = jetstream(nc);
  }

  /** Publishes and marks the row published. Throws QueueFullError on backpressure, the NATS error otherwise. */
  async publish(msg: JobMessage): Promise<void> {
    try {
      await this.js.publish(subjects.job(msg.lane, msg.task), JSON.stringify(msg), { msgID: msg.id, timeout: 5_000 });
    } catch (err) {
      if (isQueueFull(err)) throw new QueueFullError("DOCKET_JOBS is full");
      throw err;
    }
    this.store.markPublished(msg.id);
  }

  /**
   * Publishes many jobs with up to `inFlight` publishes awaiting their acks, marking rows published in
   * chunks as acks arrive. Stops issuing at the first failure: rows left unpublished are swept later.
   */
  async publishMany(msgs: readonly JobMessage[], inFlight = 256): Promise<{ published: number; failed: number }> {
    const acked: string[] = [];
    let published = 0;
    let failed = 0;
    const flush = () => {
      if (acked.length) this.store.markPublishedMany(acked.splice(0));
    };
    await pipelined(msgs, inFlight, async (msg) => {
      if (failed) {
        failed++;
        return;
      }
      try {
        await this.js.publish(subjects.job(msg.lane, msg.task), JSON.stringify(msg), { msgID: msg.id, timeout: 5_000 });
      } catch (err) {
        if (!failed) this.log.warn({ jobId: msg.id, err: (err as Error).message }, "publish failed");
        failed++;
        return;
      }
      published++;
      acked.push(msg.id);
      if (acked.length >= 500) flush();
    });
    flush();
    return { published, failed };
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.options.sweepEveryMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Republishes rows left unpublished (the producer crashed, or NATS was down at submit time). */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let published = 0;
    try {
      const before = new Date(Date.now() - this.options.republishAfterMs).toISOString();
      for (const row of this.store.unpublished(before, this.options.sweepLimit)) {
        try {
          await this.publish(rowToMessage(row));
          published++;
        } catch (err) {
          this.log.warn({ jobId: row.id, err: (err as Error).message }, "republish failed; will retry");
          break;
        }
      }
      if (published) this.log.info({ published }, "republished jobs");
    } finally {
      this.sweeping = false;
    }
    return published;
  }
}
