import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm, KvWatchInclude } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { CONTROL_BUCKET, cancelKey, flagCancels } from "../schema/subjects.ts";

/** The reason a cancelled job's generation is aborted with. */
export class CancelledError extends Error {
  readonly code = "cancelled";
}

/**
 * Cancel flags in the docket-control KV bucket (key cancel.<jobId>, set by the producer or any client):
 * checked before a job starts, and watched so a running generation is aborted at once.
 */
export class Cancellations {
  private kv?: KV;
  private watcher?: { stop(): void };

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  private async bucket(): Promise<KV> {
    this.kv ??= await new Kvm(jetstream(this.nc)).open(CONTROL_BUCKET);
    return this.kv;
  }

  /** Whether `attempt` of the job is cancelled (a retried job's flag cancels only the runs before the retry). */
  async isCancelled(jobId: string, attempt: number): Promise<boolean> {
    try {
      const entry = await (await this.bucket()).get(cancelKey(jobId));
      return entry !== null && entry.operation === "PUT" && flagCancels(entry.string(), attempt);
    } catch (err) {
      this.log.warn({ jobId, err: (err as Error).message }, "could not read the cancel flag; running the job");
      return false;
    }
  }

  /** Calls onCancel(jobId) for each cancel flag set from now on, until stop(). */
  async watch(onCancel: (jobId: string) => void): Promise<void> {
    const iter = await (await this.bucket()).watch({ key: cancelKey(">"), include: KvWatchInclude.UpdatesOnly });
    this.watcher = iter;
    void (async () => {
      for await (const e of iter) {
        // A retried flag only keeps a retried job's old messages from running: it aborts nothing.
        if (e.operation === "PUT" && flagCancels(e.string(), Number.MAX_SAFE_INTEGER))
          onCancel(e.key.slice(cancelKey("").length));
      }
    })();
  }

  stop(): void {
    this.watcher?.stop();
  }
}
