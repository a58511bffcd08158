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
type KvWatch = Awaited<ReturnType<KV["watch"]>>;

export class Cancellations {
  private kv?: KV;
  private watcher?: { stop(): void };
  private running = false;

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

  /**
   * Calls onCancel(jobId) for each cancel flag set from now on, until stop(). Resolves once the watch is open: opening
   * is tried again for up to `openWithinMs` (a JetStream cluster that has just formed may not have elected the bucket's
   * leader, and the request times out), and a watch that ends is opened again (a bucket provisioned anew).
   */
  async watch(onCancel: (jobId: string) => void, openWithinMs = 60_000): Promise<void> {
    this.running = true;
    const deadline = Date.now() + openWithinMs;
    let first = await this.open(deadline);
    void (async () => {
      while (this.running) {
        const iter = first ?? (await this.open(Number.POSITIVE_INFINITY));
        first = undefined;
        if (!iter) return;
        try {
          for await (const e of iter) {
            // A retried flag only keeps a retried job's old messages from running: it aborts nothing.
            if (e.operation === "PUT" && flagCancels(e.string(), Number.MAX_SAFE_INTEGER))
              onCancel(e.key.slice(cancelKey("").length));
          }
        } catch (err) {
          this.log.debug({ err: (err as Error).message }, "cancel flag watch failed");
        }
        if (!this.running) return;
        this.log.debug("cancel flag watch ended; watching again");
        await new Promise((r) => setTimeout(r, 1_000).unref());
      }
    })();
  }

  /** Opens the watch, trying again each second until `deadline` (then throws) or stop() (then undefined). */
  private async open(deadline: number): Promise<KvWatch | undefined> {
    for (;;) {
      try {
        const iter = await (await this.bucket()).watch({ key: cancelKey(">"), include: KvWatchInclude.UpdatesOnly });
        this.watcher = iter;
        if (!this.running) iter.stop();
        return this.running ? iter : undefined;
      } catch (err) {
        this.kv = undefined;
        if (!this.running) return undefined;
        if (Date.now() > deadline) throw err;
        this.log.warn({ err: (err as Error).message }, "could not watch cancel flags yet; trying again");
        await new Promise((r) => setTimeout(r, 1_000).unref());
      }
    }
  }

  stop(): void {
    this.running = false;
    this.watcher?.stop();
  }
}
