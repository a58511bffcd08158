import {
  type Consumer,
  type ConsumerInfo,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { routedModel, shareWeight } from "../runtime/provision.ts";
import { JOBS_STREAM, LANES, type Lane, workerConsumer, workerConsumerOf } from "../schema/subjects.ts";
import { FairShare } from "./fair-share.ts";
import type { SlotPool } from "./slots.ts";

export interface IntakeOptions {
  /** How long an idle pull waits for a job (nats.js minimum: 1000 ms). */
  idlePullMs: number;
  /** The model name the worker serves: it also pulls docket-workers-<lane>-<model>. Unset: only the default consumers. */
  model?: string;
  /** Whether it pulls the jobs naming no model (docket-workers-<lane>). Default true. */
  servesDefault?: boolean;
  /**
   * Creates the model's consumers when they do not exist (at start, and when one is found gone: a JetStream store
   * wiped under the worker). Unset: they are waited for, as the default ones are.
   */
  prepare?: () => Promise<void>;
  /** This worker's token (workerToken): its docket-at consumers hold the jobs routed to it. */
  worker?: string;
  /** Whether the worker of a token is alive (a fresh heartbeat): a dead one's routed jobs are taken over. */
  alive?: (worker: string) => Promise<boolean>;
}

/**
 * One durable consumer the worker pulls from: a lane's jobs naming no model, or naming the worker's model (fixed,
 * owner ""), or one API key's jobs on either in a shared lane (a docket-share consumer, found in the consumer list).
 */
interface Source {
  lane: Lane;
  name: string;
  model?: string;
  /** The API key whose jobs it holds; "" for the jobs of no key. */
  owner: string;
  /** The key's weight (from the docket-share consumer's description); 1 for the rest. */
  weight: number;
  /** A docket-due consumer: the key's jobs with a deadline, served before its others. */
  due?: boolean;
  /**
   * A docket-at consumer: jobs routed to a worker that holds their document's prefix. This worker's own are served
   * first in their lane (the producer routes at most as many as it decodes at once); a dead worker's are taken over.
   */
  routed?: "own" | "orphaned";
  consumer?: Consumer;
  /** Latest num_pending from the consumer list. */
  pending: number;
}

/** JetStream's answer to a consumer whose filter overlaps another's on a WorkQueue stream. */
const FILTER_NOT_UNIQUE = 10100;

/** What a worker waiting for a consumer tells the operator. */
function waitingFor(source: Source, err: unknown): string {
  if (!source.model) return "job consumer not found: waiting for provisioning (the producer provisions JetStream at start-up)";
  if (err instanceof JetStreamApiError && err.code === FILTER_NOT_UNIQUE)
    return "job consumer not created: the default consumers still have their filter from before model names; waiting for provisioning (the producer's, or `npm run provision`) to narrow it";
  return `job consumer not found and not created: waiting for it (when this NATS user may not create consumers, run \`npm run provision -- --model ${source.model}\` as the admin user)`;
}

/**
 * Pulls jobs from the per-lane durable consumers, never more than the pool has free slots, so no job
 * sits in a worker's memory unacked and unworked. A lane has up to two consumers: the jobs naming no model
 * (when the worker serves the default model) and the jobs naming the worker's model.
 *
 * In the shared lanes (default, batch) each API key's jobs have their own consumer (docket-share-*, made by the
 * producer); the worker finds them in the consumer list.
 *
 * Each round reads the consumers' pending counts from one consumer list and fetches exactly that many (bounded by
 * free slots) in lane priority order: interactive, default, batch. Within a lane the free slots go to the keys by
 * fair share (FairShare: the least tokens served lately, over the key's weight), not to the oldest message. When
 * nothing reports pending work, one single-message pull waits on each consumer, so a new job (or a redelivery,
 * which pending counts do not show) starts at once without polling.
 */
export class Intake {
  private running = false;
  private loop?: Promise<void>;
  private sources: Source[] = [];
  private readonly idlePulls = new Set<Source>();
  /** Tokens served per API key lately: how a lane's free slots are split. */
  readonly fair = new FairShare();
  private jsm?: JetStreamManager;
  private idleRound = 0;
  private wake!: () => void;
  private woken = Promise.resolve();
  private stopSignal!: () => void;
  private readonly stopped = new Promise<void>((resolve) => {
    this.stopSignal = resolve;
  });
  /** Latest num_pending per lane (summed over its consumers), from consumer info: the queue depth. */
  readonly pending: Record<Lane, number> = { interactive: 0, default: 0, batch: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly slots: SlotPool,
    /** Runs a job; resolves to the tokens it used (prompt + completion: what its key is charged), or nothing. */
    private readonly handle: (m: JsMsg) => Promise<number | undefined>,
    private readonly log: Logger,
    private readonly options: IntakeOptions = { idlePullMs: 1_000 },
  ) {
    this.rearm();
    const { model, servesDefault = true } = options;
    for (const lane of LANES) {
      if (servesDefault) this.sources.push({ lane, name: workerConsumer(lane), owner: "", weight: 1, pending: 0 });
      if (model) this.sources.push({ lane, name: workerConsumer(lane, model), model, owner: "", weight: 1, pending: 0 });
    }
  }

  private rearm(): void {
    this.woken = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  /**
   * Binds the consumers, then starts pulling. The default ones are waited for (the producer provisions them); a
   * model's are created if missing, and when that fails (a NATS user that may not create consumers) they are waited
   * for in the background: the worker serves the default model's jobs meanwhile.
   */
  async start(): Promise<void> {
    this.running = true;
    for (const source of this.sources) {
      if (!source.model) source.consumer = await this.bind(source);
      else {
        source.consumer = await this.attempt(source, 0);
        if (!source.consumer)
          void this.bind(source, 1).then((consumer) => {
            source.consumer = consumer;
            this.wake();
          });
      }
    }
    this.loop = this.run();
  }

  private async bind(source: Source, firstAttempt = 0): Promise<Consumer | undefined> {
    for (let attempt = firstAttempt; this.running; attempt++) {
      const consumer = await this.attempt(source, attempt);
      if (consumer) return consumer;
      // Every second for the default consumers (the producer provisions them at start); a model's, which may wait
      // for a person to run provisioning, are asked for less and less often (up to every 30 s).
      const delay = source.model ? Math.min(30_000, 1_000 * 2 ** attempt) : 1_000;
      await Promise.race([new Promise((r) => setTimeout(r, delay).unref()), this.stopped]);
    }
    return undefined;
  }

  /** One try at a source's consumer (creating a model's when missing); the first failure is logged. */
  private async attempt(source: Source, attempt: number): Promise<Consumer | undefined> {
    try {
      if (source.model) await this.prepare();
      return await jetstream(this.nc).consumers.get(JOBS_STREAM, source.name);
    } catch (err) {
      if (attempt === 0)
        this.log.warn({ lane: source.lane, consumer: source.name, err: (err as Error).message }, waitingFor(source, err));
      return undefined;
    }
  }

  private preparing?: Promise<void>;

  /** The model's consumers, created when missing; concurrent callers share one attempt. */
  private prepare(): Promise<void> {
    if (!this.options.prepare) return Promise.resolve();
    this.preparing ??= this.options.prepare().finally(() => {
      this.preparing = undefined;
    });
    return this.preparing;
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
          const waiting = this.sources.filter((s) => s.lane === lane && s.pending > 0);
          const granted = this.slots.take(
            lane,
            waiting.reduce((n, s) => n + s.pending, 0),
          );
          if (granted === 0) continue;
          const shares = this.split(waiting, granted);
          let used = 0;
          for (const n of shares.values()) used += n;
          this.slots.release(lane, granted - used);
          for (const [source, n] of shares) started += await this.pull(source, n, 1_000);
        }
        if (started > 0) continue;
        if (this.sources.some((s) => s.pending > 0)) {
          // Work is waiting but the only free slots are kept for the interactive lane: wait for a job to
          // finish, with a pull waiting on the interactive lane meanwhile, so that a person's job starts at
          // once rather than when a batch slot frees up (measured: ~0.8 s of queue time under a backlog).
          // One reserved slot holds one pull: with two interactive consumers it waits on the default model's (jobs
          // naming no model, and those naming DOCKET_DEFAULT_MODEL, which the producer publishes there too). A job
          // on this worker's named consumer is seen at a later pending count, once the held pull expires: up to two
          // idle pulls (measured 2 s of queue time under a full backlog). Taking turns between the two consumers
          // made the default consumer's jobs wait as long, half of the time.
          this.rearm();
          this.reservePull();
          await Promise.race([
            this.slots.freed("batch"),
            this.woken,
            this.stopped,
            new Promise((r) => setTimeout(r, this.options.idlePullMs)),
          ]);
          if (this.slots.available("batch") > 0) continue;
        }
        // Nothing pending: wait on every consumer at once; the first job to arrive ends the wait. The consumer
        // asked first rotates: with few free slots only the first get a pull, and a redelivered job (which
        // pending counts do not show) must not wait forever behind another consumer's idle pull.
        // A slot that frees up meanwhile ends the wait too: a job finishing while every batch slot was busy
        // (so no batch-lane pull is waiting) must not leave its slot empty until an idle pull expires (measured:
        // at batch 1 that idled the worker for half of every backlog).
        this.rearm();
        // The interactive reserve holds one pull, and it waits where people's jobs arrive (the default model's
        // consumer, as above): left to the rotation, every other round it sat on the named model's consumer and a
        // person's job on an idle worker waited for that pull to expire (measured: ~1 s, for 1 job in 5).
        this.reservePull();
        const n = this.sources.length;
        const first = this.idleRound++ % n;
        for (let i = 0; i < n; i++) this.idlePull(this.sources[(first + i) % n] as Source);
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

  /**
   * Splits `granted` slots of one lane among its sources with work, never more than one has pending: the jobs routed
   * here (or orphaned by a dead worker) first, few by construction and their prefix here; the rest by key
   * (FairShare), then among each key's consumers (its jobs with a deadline first; the default model's and the
   * worker's own).
   */
  private split(waiting: readonly Source[], granted: number): Map<Source, number> {
    const out = new Map<Source, number>();
    let left = granted;
    for (const s of waiting) {
      if (!s.routed || left === 0) continue;
      const n = Math.min(left, s.pending);
      out.set(s, n);
      left -= n;
    }
    const claims = new Map<string, { owner: string; weight: number; pending: number }>();
    for (const s of waiting) {
      if (s.routed) continue;
      const c = claims.get(s.owner) ?? { owner: s.owner, weight: s.weight, pending: 0 };
      c.pending += s.pending;
      claims.set(s.owner, c);
    }
    const byOwner = this.fair.allocate(left, [...claims.values()]);
    // Within a key's share its jobs with a deadline first.
    for (const s of [...waiting].sort((x, y) => Number(y.due ?? false) - Number(x.due ?? false))) {
      if (s.routed) continue;
      const share = byOwner.get(s.owner) ?? 0;
      const n = Math.min(share, s.pending);
      if (n <= 0) continue;
      out.set(s, n);
      byOwner.set(s.owner, share - n);
    }
    return out;
  }

  /**
   * Pending counts from one list of DOCKET_JOBS's consumers, which also brings the docket-share consumers of the
   * models this worker serves (new ones are bound, deleted ones dropped). A model's own consumer found gone (a wiped
   * store: provisioning restores only the default ones) is created again.
   */
  private async refreshPending(): Promise<void> {
    this.jsm ??= await jetstreamManager(this.nc);
    const listed = new Map<string, ConsumerInfo>();
    for await (const info of this.jsm.consumers.list(JOBS_STREAM)) listed.set(info.name, info);
    // Found in the list (share and routed consumers) and gone from it: dropped.
    this.sources = this.sources.filter((s) => (s.owner === "" && !s.routed) || listed.has(s.name));
    for (const [name, info] of listed) {
      const of = workerConsumerOf(name);
      if (of?.worker) {
        await this.routedSource(name, of.lane, of.worker, info);
        continue;
      }
      if (!of?.owner || !this.serves(of.model)) continue;
      const known = this.sources.find((s) => s.name === name);
      if (known) known.weight = shareWeight(info.config.description);
      else
        this.sources.push({
          lane: of.lane,
          name,
          ...(of.model ? { model: of.model } : {}),
          owner: of.owner,
          weight: shareWeight(info.config.description),
          ...(of.due ? { due: true } : {}),
          consumer: await jetstream(this.nc).consumers.get(JOBS_STREAM, name),
          pending: 0,
        });
    }
    const sums: Record<Lane, number> = { interactive: 0, default: 0, batch: 0 };
    for (const source of this.sources) {
      const info = listed.get(source.name);
      if (!info && source.model && source.owner === "" && source.consumer && this.options.prepare) {
        this.log.warn({ consumer: source.name }, "job consumer gone: creating it again");
        await this.prepare();
      }
      source.pending = source.consumer && info ? info.num_pending : 0;
      sums[source.lane] += source.pending;
    }
    Object.assign(this.pending, sums);
  }

  /**
   * A docket-at consumer from the list: this worker's own is always a source; another worker's only while it has jobs,
   * its worker is dead (no fresh heartbeat) and served this worker's model, so no routed job waits for a worker that
   * will not come back, and none runs on another model.
   */
  private async routedSource(name: string, lane: Lane, worker: string, info: ConsumerInfo): Promise<void> {
    const known = this.sources.find((s) => s.name === name);
    const own = worker === this.options.worker;
    // Another worker's jobs are taken over only by a worker of the model it served (its consumer's description).
    const sameModel = routedModel(info.config.description) === this.options.model;
    const orphaned =
      sameModel && !own && info.num_pending > 0 && this.options.alive !== undefined && !(await this.options.alive(worker));
    if (!own && !orphaned) {
      if (known) this.sources = this.sources.filter((s) => s !== known);
      return;
    }
    if (known) return;
    if (orphaned) this.log.info({ consumer: name, jobs: info.num_pending }, "taking over the jobs routed to a dead worker");
    this.sources.push({
      lane,
      name,
      owner: "",
      weight: 1,
      routed: own ? "own" : "orphaned",
      consumer: await jetstream(this.nc).consumers.get(JOBS_STREAM, name),
      pending: 0,
    });
  }

  /** Jobs routed to this worker still queued (its docket-at consumers): the heartbeat's `routed`. */
  get routedPending(): number {
    return this.sources.reduce((n, s) => n + (s.routed === "own" ? s.pending : 0), 0);
  }

  /** Whether the worker serves the jobs of `model` (undefined: the default model's). */
  private serves(model: string | undefined): boolean {
    return model === undefined ? (this.options.servesDefault ?? true) : model === this.options.model;
  }

  /** Fetches up to `granted` jobs (slots already taken) from a source, starts each, returns unused slots. */
  private async pull(source: Source, granted: number, expires: number): Promise<number> {
    if (granted <= 0) return 0;
    const { lane } = source;
    let used = 0;
    try {
      const consumer = source.consumer;
      if (!consumer) return 0;
      const messages = await consumer.fetch({ max_messages: granted, expires });
      for await (const m of messages) {
        used++;
        this.wake();
        this.slots.begin(lane);
        const estimate = this.fair.begin(source.owner);
        void this.handle(m)
          .then(
            (tokens) => this.fair.end(source.owner, estimate, tokens ?? 0),
            () => this.fair.end(source.owner, estimate, 0),
          )
          .finally(() => {
            this.slots.finish(lane);
            if (lane === "interactive") this.reservePull();
          });
      }
    } finally {
      this.slots.release(lane, granted - used);
    }
    return used;
  }

  private idlePull(source: Source): void {
    if (this.idlePulls.has(source) || !this.running || !source.consumer) return;
    const granted = this.slots.take(source.lane, 1);
    if (granted === 0) return;
    this.idlePulls.add(source);
    this.pull(source, granted, this.options.idlePullMs).then(
      () => {
        this.idlePulls.delete(source);
        if (source.lane === "interactive") this.reservePull();
      },
      (err) => {
        // Not armed again here: a pull that fails at once would spin. The loop's next round arms it.
        this.idlePulls.delete(source);
        if (this.running) this.log.warn({ consumer: source.name, err: (err as Error).message }, "pull failed");
      },
    );
  }

  /**
   * The interactive reserve's pull, on the consumer people's jobs arrive on (the default model's; see run()). It is
   * armed again as soon as it ends, by expiry or with a job, and when an interactive job ends: the loop arms it only
   * between rounds, and under a backlog a round comes when a batch job ends, so a person's job arriving after the
   * pull had ended waited for that (bench:worker, stack, bench model: queue wait p95 290-450 ms under load, 5 ms idle).
   */
  private reservePull(): void {
    const interactive = this.sources.find((s) => s.lane === "interactive");
    if (interactive) this.idlePull(interactive);
  }

  /** Stops pulling; pull requests in the air end at their expiry. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopSignal();
    await this.loop;
  }
}
