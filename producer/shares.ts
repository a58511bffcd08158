import { type ConsumerConfig, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { isPermissionError } from "../runtime/nats.ts";
import {
  ensureRoutedConsumer,
  ensureShareConsumer,
  type ProvisionOptions,
  routedConsumerConfig,
  type Share,
  shareConsumerConfig,
} from "../runtime/provision.ts";
import type { JobMessage } from "../schema/job.ts";
import { toModelName } from "../schema/model.ts";
import { isShareKey, JOBS_STREAM, SHARED_LANES, subjects, workerConsumerOf, workerToken } from "../schema/subjects.ts";
import type { WorkerRegistry } from "./worker-registry.ts";

/** How long a consumer found (or made) is taken to exist: a wiped store is noticed within this. */
const KNOWN_MS = 60_000;

/** Where a document's tasks can be routed: the live workers' heartbeats (WorkerRegistry). */
export type Holders = Pick<WorkerRegistry, "holder" | "on">;

export interface SharesOptions {
  /** DOCKET_PREFIX_ROUTING: route a job on a document to the worker holding its prefix (docs/prefix-reuse.md). */
  holders?: Holders;
  /** The weight of an API key (KeyStore.weight). */
  weightOf: (owner: string) => number;
  provision: ProvisionOptions;
  /**
   * DOCKET_DEFAULT_MODEL: a job naming it travels on the subject without a model token, like the jobs naming none,
   * so the default model's workers read their interactive lane from one consumer (its one reserved sequence holds
   * one waiting pull: a second consumer's jobs would wait up to two idle pulls under a backlog).
   */
  defaultModel?: string;
}

/**
 * Where a job is published. In a shared lane (default, batch):
 * - a job on a document a live worker holds goes to that worker (subjects.routedJob, its docket-at consumer) while it
 *   has room (docs/prefix-reuse.md);
 * - else a key's job goes on the key's subject (subjects.sharedJob), read by the key's docket-share consumer, so that
 *   workers share the lane fairly between keys (docs/scheduling.md); the consumer is made before the key's first job
 *   there, with the key's weight in its description.
 * Jobs of the admin key (or with auth off), of the interactive lane, or of a producer whose NATS user may not make
 * consumers keep the subjects from before (subjects.job): nothing waits on a consumer that cannot be made.
 */
export class Shares {
  /** Consumer name → when it was last found or made, or the pending attempt. */
  private readonly known = new Map<string, { at: number; ready: Promise<boolean> }>();
  private refusedLogged = false;

  /** Jobs routed to a worker since its last heartbeat (which counts those queued before), by worker token. */
  private readonly routedSince = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly options: SharesOptions,
  ) {
    options.holders?.on("heartbeat", (_key, hb) => this.routedSince.delete(workerToken(hb.id)));
  }

  /**
   * The subject `msg` is published on; makes its consumer first when it is not known to exist. A job on a document
   * some live worker holds goes to that worker while it has room; a key's job to the key's; the rest to the lane's.
   */
  async subject(msg: JobMessage): Promise<string> {
    const model = msg.model === this.options.defaultModel ? undefined : msg.model;
    const owner = msg.owner;
    if (!SHARED_LANES.includes(msg.lane)) return subjects.job(msg.lane, msg.task, model);
    const holder = this.holderFor(msg);
    if (holder) {
      const { worker, served } = holder;
      // Counted before the wait for its consumer: jobs published at once each see the ones before them.
      this.routedSince.set(worker, (this.routedSince.get(worker) ?? 0) + 1);
      const config = routedConsumerConfig(msg.lane, worker, served);
      if (await this.ensure(config, () => ensureRoutedConsumer(this.nc, msg.lane, worker, served, this.options.provision)))
        return subjects.routedJob(msg.lane, msg.task, model, owner, worker);
      this.routedSince.set(worker, (this.routedSince.get(worker) ?? 1) - 1);
    }
    if (!owner || !isShareKey(owner)) return subjects.job(msg.lane, msg.task, model);
    // Within the key's share its jobs with a deadline go first: they wait on their own consumer.
    const due = msg.deadline !== undefined;
    const share: Share = { lane: msg.lane, model, owner, due };
    const weight = this.options.weightOf(owner);
    const ok = await this.ensure(shareConsumerConfig(share, weight), () =>
      ensureShareConsumer(this.nc, { ...share, weight }, this.options.provision),
    );
    return ok ? subjects.sharedJob(msg.lane, msg.task, model, owner, due) : subjects.job(msg.lane, msg.task, model);
  }

  /**
   * The token of the live worker that holds the document of `msg` and has room for it (fewer of its routed jobs
   * queued, its last heartbeat's count plus those routed since, than the sequences it decodes at once), and the model
   * it serves.
   */
  private holderFor(msg: JobMessage): { worker: string; served: string } | undefined {
    const sha = msg.input.sha256;
    const holders = this.options.holders;
    if (!sha || !holders) return undefined;
    const w = holders.holder(sha, msg.model ?? null);
    if (!w) return undefined;
    const token = workerToken(w.id);
    const queued = (w.routed ?? 0) + (this.routedSince.get(token) ?? 0);
    return queued < Math.max(1, w.batchSize) ? { worker: token, served: toModelName(w.model) } : undefined;
  }

  /** Whether a consumer exists (found or made within KNOWN_MS); false when this NATS user may not make it. */
  private ensure(config: Partial<ConsumerConfig>, make: () => Promise<void>): Promise<boolean> {
    const name = config.durable_name as string;
    const now = Date.now();
    const seen = this.known.get(name);
    if (seen && now - seen.at < KNOWN_MS) return seen.ready;
    const ready = make()
      .then(() => true)
      .catch((err: unknown) => {
        if (!isPermissionError(err)) {
          // NATS unreachable or slow: the publish fails too and the row is republished by the sweep.
          this.known.delete(name);
          throw err;
        }
        if (!this.refusedLogged)
          this.log.warn(
            { consumer: name, err: (err as Error).message },
            "this NATS user may not create the per-key and per-worker consumers (docket-share-*, docket-due-*, docket-at-*): jobs are published on the lane's own subject, first come first served, to any worker; allow their creation as deploy/nats/secure.conf does",
          );
        this.refusedLogged = true;
        return false;
      });
    this.known.set(name, { at: now, ready });
    return ready;
  }

  /** Sets a key's weight on its consumers that exist (an admin changed it); later ones are made with it. */
  async reweigh(owner: string): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const weight = this.options.weightOf(owner);
    for await (const c of jsm.consumers.list(JOBS_STREAM)) {
      const of = workerConsumerOf(c.name);
      if (of?.owner === owner)
        await ensureShareConsumer(this.nc, { ...of, model: of.model, owner, weight }, this.options.provision);
    }
  }

  /** Forgets which consumers exist: DOCKET_JOBS was made anew, without them. */
  forget(): void {
    this.known.clear();
  }
}
