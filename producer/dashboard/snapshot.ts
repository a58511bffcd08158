import { EventEmitter } from "node:events";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../runtime/log.ts";
import { HEARTBEAT_STALE_MS, WorkerHeartbeat } from "../../schema/heartbeat.ts";
import { CONTROL_BUCKET, WORKER_KEYS } from "../../schema/subjects.ts";
import { type QueueDepth, queueDepth } from "../metrics.ts";
import type { QueueEstimator } from "../queue-estimate.ts";
import type { JobChange, Recorder } from "../recorder.ts";
import { type BatchStore, batchProgress } from "../stores/batches.ts";
import type { JobStore } from "../stores/jobs.ts";

/** A batch as the dashboard lists it: its progress is batchProgress, the batch API's reading. */
export interface BatchProgress {
  batchId: string;
  total: number;
  /** Jobs per state. */
  counts: Record<string, number>;
  /** Jobs in a final state. */
  done: number;
  submittedAt: string;
  updatedAt: string;
  /** While jobs of it are queued: when the last should finish (the batch view's queue estimate). */
  estimatedFinishAt: string | null;
}

export interface RecentJob {
  id: string;
  state: string;
  lane: string;
  task: string;
  batchId: string | null;
  updatedAt: string;
}

export interface WorkerView extends WorkerHeartbeat {
  /** False when its last heartbeat is older than three intervals. */
  alive: boolean;
}

export interface HistoryPoint {
  at: number;
  jobsPerSecond: number;
  tokensPerSecond: number;
  /** Sum of the live workers' batch sizes. */
  batchSize: number;
  /** Jobs waiting in all lanes. */
  pending: number;
}

export interface Snapshot {
  at: string;
  queue: Record<string, QueueDepth> | null;
  jobs: Record<string, number>;
  workers: WorkerView[];
  batches: BatchProgress[];
  recentJobs: RecentJob[];
  history: HistoryPoint[];
}

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const RECENT_BATCHES = 10;
const RECENT_JOBS = 20;

/** Live workers from their heartbeats in the docket-control KV bucket. */
export async function readWorkers(kv: KV, now = Date.now()): Promise<WorkerView[]> {
  const out: WorkerView[] = [];
  for await (const key of await kv.keys(WORKER_KEYS)) {
    const entry = await kv.get(key);
    if (entry?.operation !== "PUT") continue;
    const hb = WorkerHeartbeat.safeParse(entry.json());
    if (hb.success) out.push({ ...hb.data, alive: now - Date.parse(hb.data.at) < HEARTBEAT_STALE_MS });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * What the dashboard shows, and its recent history. While anyone watches (subscribe), it builds one
 * snapshot a second, appends a history point and emits it to every watcher.
 */
export class Dashboard extends EventEmitter {
  private readonly history: HistoryPoint[] = [];
  private timer?: NodeJS.Timeout;
  private watchers = 0;
  private kv?: KV;
  private finished = 0;
  private tokens = 0;
  private last = { at: Date.now(), finished: 0, tokens: 0 };
  private readonly onChange = ({ state, event }: JobChange) => {
    if (!FINAL.has(state)) return;
    this.finished++;
    this.tokens += event.result?.usage.completionTokens ?? 0;
  };

  constructor(
    private readonly stores: { jobs: JobStore; batches: BatchStore; queue?: QueueEstimator },
    private readonly nc: NatsConnection,
    private readonly recorder: Recorder,
    private readonly log: Logger,
    readonly options = { intervalMs: 1_000, historyPoints: 300, maxWatchers: 32 },
  ) {
    super();
    this.setMaxListeners(0);
    recorder.on("change", this.onChange);
  }

  async snapshot(): Promise<Snapshot> {
    const [queue, workers] = await Promise.all([
      queueDepth(this.nc).catch(() => null),
      this.workers().catch((err: Error) => {
        this.log.debug({ err: err.message }, "could not read worker heartbeats");
        return [];
      }),
    ]);
    return {
      at: new Date().toISOString(),
      queue,
      jobs: this.stores.jobs.countByState(),
      workers,
      batches: this.stores.batches.recent(RECENT_BATCHES).map((b) => ({
        batchId: b.id,
        ...batchProgress(b),
        submittedAt: b.createdAt,
        updatedAt: b.updatedAt,
        estimatedFinishAt: b.queued > 0 ? (this.stores.queue?.forBatch(b)?.estimatedFinishAt ?? null) : null,
      })),
      recentJobs: this.stores.jobs.recent(RECENT_JOBS),
      history: this.history,
    };
  }

  private async workers(): Promise<WorkerView[]> {
    this.kv ??= await new Kvm(this.nc).open(CONTROL_BUCKET);
    return readWorkers(this.kv);
  }

  /** Starts the ticker for one more watcher; false when there are too many already. */
  subscribe(): boolean {
    if (this.watchers >= this.options.maxWatchers) return false;
    if (this.watchers++ === 0) {
      this.last = { at: Date.now(), finished: this.finished, tokens: this.tokens };
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    }
    return true;
  }

  unsubscribe(): void {
    if (--this.watchers === 0) clearInterval(this.timer);
  }

  private ticking = false;
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const snap = await this.snapshot();
      const now = Date.now();
      const seconds = Math.max(0.001, (now - this.last.at) / 1000);
      this.history.push({
        at: now,
        jobsPerSecond: round((this.finished - this.last.finished) / seconds),
        tokensPerSecond: round((this.tokens - this.last.tokens) / seconds),
        batchSize: snap.workers.filter((w) => w.alive).reduce((n, w) => n + w.batchSize, 0),
        pending: Object.values(snap.queue ?? {}).reduce((n, d) => n + d.pending, 0),
      });
      if (this.history.length > this.options.historyPoints) this.history.shift();
      this.last = { at: now, finished: this.finished, tokens: this.tokens };
      this.emit("snapshot", snap);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "dashboard snapshot failed");
    } finally {
      this.ticking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.watchers = 0;
    this.recorder.off("change", this.onChange);
    this.emit("close");
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
