import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { HEARTBEAT_INTERVAL_MS, type WorkerHeartbeat } from "../schema/heartbeat.ts";
import { CONTROL_BUCKET, workerKey } from "../schema/subjects.ts";

/**
 * Puts the worker's heartbeat (model, batch size, tokens/s) under workers.<id> in the docket-control KV
 * bucket every few seconds, so the producer's dashboard can list live workers without asking each one.
 * stop() deletes the key: a worker that shut down cleanly disappears at once, one that died goes stale.
 */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  private warned = false;
  private kv?: KV;

  constructor(
    private readonly nc: NatsConnection,
    private readonly read: () => Promise<WorkerHeartbeat>,
    private readonly log: Logger,
    private readonly intervalMs = HEARTBEAT_INTERVAL_MS,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => {
        this.beating = undefined;
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      const hb = await this.read();
      this.kv ??= await new Kvm(this.nc).open(CONTROL_BUCKET);
      await this.kv.put(workerKey(hb.id), JSON.stringify(hb));
      this.warned = false;
    } catch (err) {
      if (!this.warned) this.log.warn({ err: (err as Error).message }, "heartbeat not published; retrying");
      this.warned = true;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    try {
      const id = (await this.read()).id;
      this.kv ??= await new Kvm(this.nc).open(CONTROL_BUCKET);
      await this.kv.delete(workerKey(id));
    } catch {
      // Gone NATS: the key goes stale and the dashboard shows the worker as gone.
    }
  }
}
