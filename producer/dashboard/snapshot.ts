import { EventEmitter } from "node:events";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../runtime/log.ts";
import type { BatchView } from "../../schema/batch.ts";
import { isFresh, WorkerHeartbeat } from "../../schema/heartbeat.ts";
import { type JobState, TERMINAL_STATES } from "../../schema/job.ts";
import { CONTROL_BUCKET, type Lane, WORKER_KEYS } from "../../schema/subjects.ts";
import { type QueueDepth, queueDepth } from "../metrics.ts";
import type { QueueEstimator } from "../queue-estimate.ts";
import type { JobChange, Recorder } from "../recorder.ts";
import { type BatchStore, toBatchView } from "../stores/batches.ts";
import type { FailureCount, JobStore, JobSummary } from "../stores/jobs.ts";
import type { WorkerRegistry } from "../worker-registry.ts";
import { type Alert, alertsFor } from "./alerts.ts";
import { History, type Sample } from "./history.ts";
import { type LatencyFigures, latencyByLane } from "./latency.ts";

export interface WorkerView extends WorkerHeartbeat {
  /** False when its last heartbeat is older than three intervals. */
  alive: boolean;
}

/** The live workers together, from their heartbeats: what the header and the workers' total row show. */
export interface Fleet {
  alive: number;
  /** Jobs the live workers are running. */
  inFlight: number;
  /** Sum of their batch sizes (each batcher's target). */
  batchSize: number;
  /** Sum of their context sequences. */
  sequences: number;
  tokensPerSecond: number;
}

/** Figures over many jobs, recomputed every `statsMs`: failures by error code, queue and run time percentiles. */
export interface Stats {
  at: string;
  failures: FailureCount[];
  /** FailureCount.recent counts failures since this time (an hour before `at`). */
  failuresSince: string;
  latency: LatencyFigures[];
  /** Percentiles are over at most this many of the latest succeeded jobs. */
  latencyOf: number;
}

/** A model with queued jobs or live workers: which serve it and what waits for it. */
export interface ModelRow {
  /** null: the jobs naming no model (the default model). */
  model: string | null;
  /** Live workers that take its jobs. */
  workers: number;
  /** Jobs naming it in state queued. */
  queued: number;
  /** Set when jobs wait for it and no live worker serves it. */
  waiting?: string;
}

/** A listed job, and why it does not start when no live worker serves its model. */
export type WaitingJobSummary = JobSummary & { waiting?: string };

/** Models with queued jobs or live workers, the default first: a model whose jobs wait for a worker says why. */
export function modelRows(jobs: JobStore, workers: WorkerRegistry): ModelRow[] {
  const queued = new Map<string | null, number>(jobs.queuedByModel().map((r) => [r.model, r.n]));
  const names = new Set<string | null>([null, ...queued.keys(), ...workers.models().map((m) => m.id)]);
  return [...names]
    .map((model) => {
      const n = queued.get(model) ?? 0;
      const waiting = n > 0 ? workers.waiting({ state: "queued", model }) : undefined;
      return { model, workers: workers.serving(model).length, queued: n, ...(waiting ? { waiting } : {}) };
    })
    .filter((r) => r.workers > 0 || r.queued > 0)
    .sort((a, b) => (a.model === null ? -1 : b.model === null ? 1 : a.model.localeCompare(b.model)));
}

/** Listed jobs with the hint of those waiting for a worker of their model. */
export function withWaiting(jobs: readonly JobSummary[], workers?: WorkerRegistry): WaitingJobSummary[] {
  return jobs.map((j) => {
    const waiting = workers?.waiting(j);
    return waiting ? { ...j, waiting } : j;
  });
}

export interface Snapshot {
  at: string;
  /** Per-lane depth of the JetStream consumers; null when NATS could not be read. */
  queue: Record<string, QueueDepth> | null;
  /** Jobs per state in SQLite. */
  jobs: Partial<Record<JobState, number>>;
  /** Jobs per lane and state in SQLite. */
  lanes: Partial<Record<Lane, Partial<Record<JobState, number>>>>;
  fleet: Fleet;
  workers: WorkerView[];
  /** Per model: live workers serving it, its queued jobs, and why they wait when no live worker serves it. */
  models: ModelRow[];
  batches: BatchView[];
  recentJobs: WaitingJobSummary[];
  stats: Stats;
  alerts: Alert[];
  /** How often history is sampled, in ms. */
  sampleMs: number;
  /** The history kept, oldest first: in GET /dashboard/snapshot, and as the stream's first `history` event. */
  history?: readonly Sample[];
}

export interface DashboardOptions {
  /** How often a snapshot goes to the pages following the stream. @default 1000 */
  intervalMs: number;
  /** How often the history is sampled (DOCKET_DASHBOARD_SAMPLE_SECONDS). @default 5000 */
  sampleMs: number;
  /** How much history is kept in memory. @default one hour */
  historyMs: number;
  /** How often failures and latencies are recomputed (each is one pass over an index). @default 5000 */
  statsMs: number;
  /** Pages that may follow the stream at once. @default 32 */
  maxWatchers: number;
}

const DEFAULTS: DashboardOptions = {
  intervalMs: 1_000,
  sampleMs: 5_000,
  historyMs: 60 * 60_000,
  statsMs: 5_000,
  maxWatchers: 32,
};
const RECENT_BATCHES = 10;
const RECENT_JOBS = 20;
const LATENCY_JOBS = 1_000;
/** NATS reads (consumer info per lane, the heartbeats) are shared by a sample and a snapshot this close together. */
const LIVE_REUSE_MS = 500;

/** Live workers from their heartbeats in the docket-control KV bucket. */
export async function readWorkers(kv: KV, now = Date.now()): Promise<WorkerView[]> {
  const out: WorkerView[] = [];
  for await (const key of await kv.keys(WORKER_KEYS)) {
    const entry = await kv.get(key);
    if (entry?.operation !== "PUT") continue;
    const hb = WorkerHeartbeat.safeParse(entry.json());
    if (hb.success) out.push({ ...hb.data, alive: isFresh(hb.data, now) });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

export function fleetOf(workers: readonly WorkerView[]): Fleet {
  const live = workers.filter((w) => w.alive);
  const sum = (f: (w: WorkerView) => number) => live.reduce((n, w) => n + f(w), 0);
  return {
    alive: live.length,
    inFlight: sum((w) => w.running),
    batchSize: sum((w) => w.batchSize),
    sequences: sum((w) => w.sequences),
    tokensPerSecond: Math.round(sum((w) => w.tokensPerSecond) * 10) / 10,
  };
}

/**
 * What the dashboard shows. From start() it samples the system every `sampleMs` into its History (emitting
 * "sample"), whether or not a page is open; while pages follow the stream (subscribe), it builds a snapshot every
 * `intervalMs` and emits it ("snapshot"). Tokens/s is the workers' (their heartbeats sample generated tokens
 * live); jobs/s counts the recorder's final changes, each job once.
 */
export class Dashboard extends EventEmitter {
  readonly options: DashboardOptions;
  private readonly history: History;
  private ticker?: NodeJS.Timeout;
  private sampler?: NodeJS.Timeout;
  private watchers = 0;
  private kv?: KV;
  private finished = 0;
  private lastSample = { at: Date.now(), finished: 0 };
  private live?: { at: number; read: Promise<{ queue: Record<string, QueueDepth> | null; workers: WorkerView[] }> };
  private stats?: Stats;
  private lastWorkers: WorkerView[] = [];
  private readonly onChange = ({ state }: JobChange) => {
    if (TERMINAL_STATES.includes(state)) this.finished++;
  };

  constructor(
    private readonly stores: { jobs: JobStore; batches: BatchStore; queue?: QueueEstimator; workers?: WorkerRegistry },
    private readonly nc: NatsConnection,
    private readonly recorder: Recorder,
    private readonly log: Logger,
    options: Partial<DashboardOptions> = {},
  ) {
    super();
    this.options = { ...DEFAULTS, ...options };
    this.history = new History(this.options.historyMs);
    this.setMaxListeners(0);
    recorder.on("change", this.onChange);
  }

  /** Starts sampling the history. */
  start(): void {
    this.lastSample = { at: Date.now(), finished: this.finished };
    this.sampler = setInterval(() => void this.sample(), this.options.sampleMs);
    this.sampler.unref();
  }

  /** The history kept, oldest first. */
  samples(): readonly Sample[] {
    return this.history.all();
  }

  async snapshot(withHistory = false): Promise<Snapshot> {
    const { queue, workers } = await this.readLive();
    const lanes: Snapshot["lanes"] = {};
    const jobs: Snapshot["jobs"] = {};
    for (const { lane, state, n } of this.stores.jobs.countByStateAndLane()) {
      lanes[lane] = { ...lanes[lane], [state]: n };
      jobs[state] = (jobs[state] ?? 0) + n;
    }
    const now = Date.now();
    const current: Sample = {
      ...this.measure(queue, workers, jobs),
      at: now,
      jobsPerSecond: this.history.latest()?.jobsPerSecond ?? 0,
    };
    return {
      at: new Date(now).toISOString(),
      queue,
      jobs,
      lanes,
      fleet: fleetOf(workers),
      workers,
      models: this.stores.workers ? modelRows(this.stores.jobs, this.stores.workers) : [],
      batches: this.stores.batches.recent(RECENT_BATCHES).map(toBatchView),
      recentJobs: withWaiting(this.stores.jobs.summaries({}, RECENT_JOBS), this.stores.workers),
      stats: this.currentStats(now),
      alerts: this.alerts(current, workers),
      sampleMs: this.options.sampleMs,
      ...(withHistory ? { history: this.history.all() } : {}),
    };
  }

  /** Starts the snapshot ticker for one more watcher; false when there are too many already. */
  subscribe(): boolean {
    if (this.watchers >= this.options.maxWatchers) return false;
    if (this.watchers++ === 0) this.ticker = setInterval(() => void this.tick(), this.options.intervalMs);
    return true;
  }

  unsubscribe(): void {
    if (--this.watchers === 0) clearInterval(this.ticker);
  }

  close(): void {
    clearInterval(this.ticker);
    clearInterval(this.sampler);
    this.watchers = 0;
    this.recorder.off("change", this.onChange);
    this.emit("close");
  }

  private measure(
    queue: Record<string, QueueDepth> | null,
    workers: readonly WorkerView[],
    jobs: Partial<Record<JobState, number>>,
  ): Omit<Sample, "at" | "jobsPerSecond"> {
    const fleet = fleetOf(workers);
    const lanes = queue ? Object.values(queue) : null;
    return {
      tokensPerSecond: fleet.tokensPerSecond,
      running: jobs.running ?? 0,
      inFlight: fleet.inFlight,
      batchSize: fleet.batchSize,
      queued: jobs.queued ?? 0,
      waiting: lanes ? lanes.reduce((n, d) => n + d.pending, 0) : null,
      withWorkers: lanes ? lanes.reduce((n, d) => n + d.ackPending, 0) : null,
      workers: fleet.alive,
    };
  }

  private alerts(current: Sample, workers: readonly WorkerView[]): Alert[] {
    const last = workers.reduce<WorkerView | undefined>((a, w) => (!a || w.at > a.at ? w : a), undefined);
    return alertsFor({
      now: current,
      history: this.history.all(),
      lastHeartbeat: last ? { workerId: last.id, at: last.at } : undefined,
      sampleMs: this.options.sampleMs,
    });
  }

  private readLive() {
    const now = Date.now();
    if (!this.live || now - this.live.at > LIVE_REUSE_MS) {
      this.live = {
        at: now,
        read: Promise.all([
          queueDepth(this.nc).catch(() => null),
          this.workers().catch((err: Error) => {
            // A read that failed (NATS busy or away) does not make workers vanish: the last ones read stay, and
            // age out by their heartbeats' times.
            this.log.debug({ err: err.message }, "could not read worker heartbeats");
            return this.lastWorkers.map((w) => ({ ...w, alive: isFresh(w, now) }));
          }),
        ]).then(([queue, workers]) => ({ queue, workers })),
      };
    }
    return this.live.read;
  }

  private async workers(): Promise<WorkerView[]> {
    this.kv ??= await new Kvm(this.nc).open(CONTROL_BUCKET);
    this.lastWorkers = await readWorkers(this.kv);
    return this.lastWorkers;
  }

  private currentStats(now: number): Stats {
    if (this.stats && now - Date.parse(this.stats.at) < this.options.statsMs) return this.stats;
    const failuresSince = new Date(now - 60 * 60_000).toISOString();
    this.stats = {
      at: new Date(now).toISOString(),
      failures: this.stores.jobs.failuresByCode(failuresSince),
      failuresSince,
      latency: latencyByLane(this.stores.jobs.latencies(LATENCY_JOBS)),
      latencyOf: LATENCY_JOBS,
    };
    return this.stats;
  }

  private sampling = false;
  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const { queue, workers } = await this.readLive();
      const now = Date.now();
      const seconds = Math.max(0.001, (now - this.lastSample.at) / 1000);
      const sample: Sample = {
        at: now,
        jobsPerSecond: round((this.finished - this.lastSample.finished) / seconds),
        ...this.measure(queue, workers, this.stores.jobs.countByState()),
      };
      this.lastSample = { at: now, finished: this.finished };
      this.history.add(sample);
      this.emit("sample", sample);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "dashboard sample failed");
    } finally {
      this.sampling = false;
    }
  }

  private ticking = false;
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      this.emit("snapshot", await this.snapshot());
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "dashboard snapshot failed");
    } finally {
      this.ticking = false;
    }
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
