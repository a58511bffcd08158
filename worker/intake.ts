import { type Consumer, type JsMsg, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { JOBS_STREAM, LANES, type Lane, workerConsumer } from "../schema/subjects.ts";
import type { SlotPool } from "./slots.ts";

export interface IntakeOptions {
  /** How long an idle pull waits for a job (nats.js minimum: 1000 ms). */
  idlePullMs: number;
}

/**
 * Pulls jobs from the per-lane durable consumers, never more than the pool has free slots, so no job
 * sits in a worker's memory unacked and unworked.
 *
 * Each round reads the lanes' pending counts from consumer info and fetches exactly that many
 * (bounded by free slots) in priority order: interactive, default, batch. When no lane reports
 * pending work, one single-message pull waits on each lane, so a new job (or a redelivery, which
 * pending counts do not show) starts at once without polling.
 */
export class Intake {
  private running = false;
  private loop?: Promise<void>;
  private consumers = new Map<Lane, Consumer>();
  private readonly idlePulls = new Set<Lane>();
  private idleRound = 0;
  private wake!: () => void;
  private woken = Promise.resolve();
  private stopSignal!: () => void;
  private readonly stopped = new Promise<void>((resolve) => {
    this.stopSignal = resolve;
  });
  /** Latest num_pending per lane, from consumer info: the queue depth. */
  readonly pending: Record<Lane, number> = { interactive: 0, default: 0, batch: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly slots: SlotPool,
    private readonly handle: (m: JsMsg) => Promise<void>,
    private readonly log: Logger,
    private readonly options: IntakeOptions = { idlePullMs: 1_000 },
  ) {
    this.rearm();
  }

  private rearm(): void {
    this.woken = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  async start(): Promise<void> {
    this.running = true;
    const js = jetstream(this.nc);
    for (const lane of LANES) {
      this.consumers.set(lane, await this.bind(() => js.consumers.get(JOBS_STREAM, workerConsumer(lane)), lane));
    }
    this.loop = this.run();
  }

  private async bind(get: () => Promise<Consumer>, lane: Lane): Promise<Consumer> {
    for (let warned = false; ; warned = true) {
      try {
        return await get();
      } catch (err) {
        if (!warned) {
          this.log.warn(
            { lane, err: (err as Error).message },
            "job consumer not found: waiting for provisioning (the producer provisions JetStream at start-up)",
          );
        }
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (this.slots.available("interactive") === 0) {
          await Promise.race([this.slots.changed(), this.stopped]);
          continue;
        }
        await this.refreshPending();
        let started = 0;
        for (const lane of LANES) {
          const want = this.pending[lane];
          if (want <= 0) continue;
          started += await this.pull(lane, this.slots.take(lane, want), 1_000);
        }
        if (started > 0) continue;
        if (LANES.some((lane) => this.pending[lane] > 0)) {
          // Work is waiting but the only free slots are kept for the interactive lane: wait for a job to
          // finish, with a pull waiting on the interactive lane meanwhile, so that a person's job starts at
          // once rather than when a batch slot frees up (measured: ~0.8 s of queue time under a backlog).
          this.rearm();
          this.idlePull("interactive");
          await Promise.race([
            this.slots.freed("batch"),
            this.woken,
            this.stopped,
            new Promise((r) => setTimeout(r, this.options.idlePullMs)),
          ]);
          if (this.slots.available("batch") > 0) continue;
        }
        // Nothing pending: wait on every lane at once; the first job to arrive ends the wait. The lane asked
        // first rotates: with few free slots only the first lanes get a pull, and a redelivered job (which
        // pending counts do not show) must not wait forever behind another lane's idle pull.
        // A slot that frees up meanwhile ends the wait too: a job finishing while every batch slot was busy
        // (so no batch-lane pull is waiting) must not leave its slot empty until an idle pull expires (measured:
        // at batch 1 that idled the worker for half of every backlog).
        this.rearm();
        const first = this.idleRound++ % LANES.length;
        for (let i = 0; i < LANES.length; i++) this.idlePull(LANES[(first + i) % LANES.length] as Lane);
        const batchFull = this.slots.available("batch") === 0;
        await Promise.race([
          this.woken,
          this.stopped,
          ...(batchFull ? [this.slots.freed("batch")] : []),
          new Promise((r) => setTimeout(r, this.options.idlePullMs)),
        ]);
      } catch (err) {
        if (!this.running) break;
        this.log.warn({ err: (err as Error).message }, "pull failed; retrying");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async refreshPending(): Promise<void> {
    for (const [lane, consumer] of this.consumers) this.pending[lane] = (await consumer.info(false)).num_pending;
  }

  /** Fetches up to `granted` jobs (slots already taken), starts each, returns unused slots. */
  private async pull(lane: Lane, granted: number, expires: number): Promise<number> {
    if (granted <= 0) return 0;
    let used = 0;
    try {
      const consumer = this.consumers.get(lane);
      if (!consumer) return 0;
      const messages = await consumer.fetch({ max_messages: granted, expires });
      for await (const m of messages) {
        used++;
        this.wake();
        this.slots.begin(lane);
        void this.handle(m).finally(() => this.slots.finish(lane));
      }
    } finally {
      this.slots.release(lane, granted - used);
    }
    return used;
  }

  private idlePull(lane: Lane): void {
    if (this.idlePulls.has(lane) || !this.running) return;
    const granted = this.slots.take(lane, 1);
    if (granted === 0) return;
    this.idlePulls.add(lane);
    this.pull(lane, granted, this.options.idlePullMs)
      .catch((err) => this.running && this.log.warn({ lane, err: (err as Error).message }, "pull failed"))
      .finally(() => this.idlePulls.delete(lane));
  }

  /** Stops pulling; pull requests in the air end at their expiry. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopSignal();
    await this.loop;
  }
}
