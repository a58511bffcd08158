import { EventEmitter } from "node:events";
import { type KvEntry, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { isFresh, WorkerHeartbeat } from "../schema/heartbeat.ts";
import type { JobState } from "../schema/job.ts";
import { toModelName } from "../schema/model.ts";
import { CONTROL_BUCKET, WORKER_KEYS } from "../schema/subjects.ts";

/** A heartbeat, and whether it is fresh (younger than HEARTBEAT_STALE_MS). */
export type Beat = WorkerHeartbeat & { alive: boolean };

/** A model some live worker serves: GET /openai/v1/models. */
export interface ServedModel {
  id: string;
  /** When the longest-running worker serving it started. */
  since: string;
}

const beat = (hb: WorkerHeartbeat, now: number): Beat => ({ ...hb, alive: isFresh(hb, now) });

/** The name a heartbeat serves (workers from before model names sent the GGUF's general.name). */
const servedName = (hb: WorkerHeartbeat) => toModelName(hb.model);

/** What the registry tells its listeners (Throughput): each heartbeat as it comes, each key a worker deleted. */
export interface WorkerRegistryEvents {
  heartbeat: [key: string, hb: WorkerHeartbeat];
  gone: [key: string];
}

/**
 * The producer's one watch of the workers' heartbeats in the docket-control KV bucket (pushed, not polled): the job
 * view, the dashboard and GET /openai/v1/models answer from it which models live workers serve and why a queued job
 * does not start, and Throughput hears each heartbeat through it ("heartbeat", "gone"). A worker that stopped cleanly
 * deletes its key; one that died goes stale (alive false) after HEARTBEAT_STALE_MS.
 */
export class WorkerRegistry extends EventEmitter<WorkerRegistryEvents> {
  /** Heartbeats by KV key (workers.<id>). */
  private readonly beats = new Map<string, WorkerHeartbeat>();
  private watcher?: { stop(): void };
  private running = false;
  private loop?: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    /** DOCKET_DEFAULT_MODEL: named in the hint of a waiting job that names no model. */
    private readonly defaultModel?: string,
  ) {
    super();
  }

  /** Reads the heartbeats there are, then follows their changes until stop(). */
  async start(): Promise<void> {
    this.running = true;
    try {
      const kv = await new Kvm(this.nc).open(CONTROL_BUCKET);
      for await (const key of await kv.keys(WORKER_KEYS)) this.apply(key, await kv.get(key));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "could not read worker heartbeats; following them from now");
    }
    this.loop = this.follow();
  }

  /** The watch, opened again after it ends (a bucket lost with a wiped store and provisioned anew). */
  private async follow(): Promise<void> {
    while (this.running) {
      try {
        const kv = await new Kvm(this.nc).open(CONTROL_BUCKET);
        const entries = await kv.watch({ key: WORKER_KEYS });
        this.watcher = entries;
        if (!this.running) entries.stop();
        for await (const e of entries) this.apply(e.key, e);
      } catch (err) {
        if (this.running) this.log.debug({ err: (err as Error).message }, "worker heartbeat watch ended; watching again");
      }
      if (this.running) await new Promise((r) => setTimeout(r, 1_000).unref());
    }
  }

  /** One KV entry: a heartbeat put, or a key deleted by a worker that stopped. */
  private apply(key: string, entry: KvEntry | null): void {
    const hb = entry?.operation === "PUT" ? WorkerHeartbeat.safeParse(entry.json()) : undefined;
    if (hb?.success) {
      this.beats.set(key, hb.data);
      this.emit("heartbeat", key, hb.data);
    } else if (!hb) {
      this.beats.delete(key);
      this.emit("gone", key);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.watcher?.stop();
    await this.loop;
  }

  /** Every worker that left a heartbeat, live or gone, by id. */
  private list(now = Date.now()): Beat[] {
    return [...this.beats.values()].map((hb) => beat(hb, now)).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Live workers that take jobs naming `model` (null: naming none, which workers not told otherwise take). */
  serving(model: string | null, now = Date.now()): Beat[] {
    return this.list(now).filter((w) => w.alive && (model === null ? w.default !== false : servedName(w) === model));
  }

  /**
   * The live worker serving `model` that finished a task on the document `sha256` most lately (its heartbeat lists it
   * first), and so holds its evaluated prefix: where the document's next task is routed, room permitting.
   */
  holder(sha256: string, model: string | null, now = Date.now()): Beat | undefined {
    let best: { beat: Beat; rank: number } | undefined;
    for (const w of this.serving(model, now)) {
      const rank = w.documents?.indexOf(sha256) ?? -1;
      if (rank >= 0 && (!best || rank < best.rank)) best = { beat: w, rank };
    }
    return best?.beat;
  }

  /** The models live workers serve, each once, by name. */
  models(now = Date.now()): ServedModel[] {
    const since = new Map<string, string>();
    for (const w of this.list(now)) {
      if (!w.alive) continue;
      const id = servedName(w);
      const first = since.get(id);
      if (!first || w.startedAt < first) since.set(id, w.startedAt);
    }
    return [...since].map(([id, s]) => ({ id, since: s })).sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Why a job does not start, when that is that no live worker takes its model: the job view's and the dashboard's
   * `waiting`. Undefined for a job that is not queued, or whose model has a live worker (busy or not).
   */
  waiting(job: { state: JobState; model: string | null }, now = Date.now()): string | undefined {
    if (job.state !== "queued" || this.serving(job.model, now).length > 0) return undefined;
    const served = this.models(now).map((m) => m.id);
    const others = served.length ? `live workers serve ${served.join(", ")}` : "no worker is running";
    if (job.model !== null) return `no worker serves model ${job.model} (${others}); the job runs once one does`;
    const name = this.defaultModel ? ` (DOCKET_DEFAULT_MODEL=${this.defaultModel})` : "";
    return `no worker serves the default model${name} (${others}); the job runs once one does`;
  }
}
