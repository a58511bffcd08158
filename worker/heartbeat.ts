import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { DOCUMENTS_IN_HEARTBEAT, HEARTBEAT_INTERVAL_MS, isFresh, WorkerHeartbeat } from "../schema/heartbeat.ts";
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

  /** Publishes a heartbeat now (one in flight is enough), besides the regular ones. */
  beatNow(): void {
    this.beating ??= this.beat().finally(() => {
      this.beating = undefined;
    });
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

/** The documents whose jobs this worker finished lately, newest first: its heartbeat's `documents`. */
export class RecentDocuments {
  private readonly order: string[] = [];

  /** Puts a document first; true when it was not listed before. */
  add(sha256: string | undefined): boolean {
    if (!sha256) return false;
    const at = this.order.indexOf(sha256);
    if (at >= 0) this.order.splice(at, 1);
    this.order.unshift(sha256);
    this.order.length = Math.min(this.order.length, DOCUMENTS_IN_HEARTBEAT);
    return at < 0;
  }

  list(): string[] {
    return [...this.order];
  }
}

/**
 * Whether another worker is alive: its heartbeat is in docket-control and fresh. Asked when a dead worker's routed
 * jobs may need taking over; answers are kept for a second.
 */
export class Peers {
  private kv?: KV;
  private readonly seen = new Map<string, { at: number; alive: boolean }>();

  constructor(private readonly nc: NatsConnection) {}

  async alive(token: string, now = Date.now()): Promise<boolean> {
    const known = this.seen.get(token);
    if (known && now - known.at < 1_000) return known.alive;
    this.kv ??= await new Kvm(this.nc).open(CONTROL_BUCKET);
    const entry = await this.kv.get(`workers.${token}`);
    const hb = entry?.operation === "PUT" ? WorkerHeartbeat.safeParse(entry.json()) : undefined;
    const alive = hb?.success === true && isFresh(hb.data, now);
    this.seen.set(token, { at: now, alive });
    return alive;
  }
}
