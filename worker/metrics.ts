import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { LATENCY_BUCKETS } from "../runtime/metrics.ts";

export type MemoryPart = "model" | "context" | "total" | "budget";

/**
 * A worker's Prometheus metrics, in its own registry (several workers may share a process in tests).
 * The batcher sets batchSize and tokensPerSecond; the planner sets memoryPlanBytes; the runner may observe
 * jobLatency and queueWait (the producer observes the same from the events it records).
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  /** Sequences decoded together now: the batcher's choice, at most `sequences`. */
  readonly batchSize: Gauge;
  /** Sequences in the worker's context. */
  readonly sequences: Gauge;
  /** Jobs running now. */
  readonly running: Gauge;
  /** Aggregate generated tokens per second over the batcher's last window. */
  readonly tokensPerSecond: Gauge;
  readonly jobLatency: Histogram<"lane" | "task">;
  readonly queueWait: Histogram<"lane">;
  readonly jobs: Counter<"lane" | "task" | "outcome">;
  readonly modelLoadSeconds: Gauge;
  readonly memoryPlanBytes: Gauge<"part">;
  /** 1 while the worker holds a loaded model and a NATS connection. */
  readonly ready: Gauge;
  readonly info: Gauge<"model">;
  /** Document-prefix lookups: live (a sequence held it), checkpoint (loaded from a file), evaluated (a miss). */
  readonly prefixLookups: Counter<"source">;
  /** Prompt tokens not evaluated because their state was reused. */
  readonly prefixTokensSaved: Counter;
  /** Prefix checkpoint files kept, and their bytes. */
  readonly prefixCheckpoints: Gauge;
  readonly prefixCheckpointBytes: Gauge;
  /** Read on each scrape for the checkpoint gauges. */
  prefixSource?: () => { checkpoints: number; checkpointBytes: number };
  /** Read on each scrape for docket_worker_jobs_running. */
  runningSource?: () => number;
  /** Read on each scrape for docket_worker_queue_pending: the intake's last consumer-info counts. */
  queueSource?: () => Record<string, number>;
  readonly queuePending: Gauge<"lane">;
  /** Decode steps run and the sequences they carried: their ratio is the batch the engine really decodes. */
  readonly decodeSteps: Counter;
  readonly decodeStepSequences: Counter;
  /** Read on each scrape for the decode-step counters (Engine.steps). */
  stepsSource?: () => { steps: number; items: number };
  /** Read on each scrape for docket_worker_ready. */
  readySource?: () => boolean;

  constructor(workerId: string) {
    this.registry.setDefaultLabels({ worker: workerId });
    collectDefaultMetrics({ register: this.registry, prefix: "docket_worker_" });
    const registers = [this.registry];
    this.batchSize = new Gauge({ name: "docket_worker_batch_size", help: "Sequences decoded together now", registers });
    this.sequences = new Gauge({ name: "docket_worker_sequences", help: "Sequences in the worker's context", registers });
    this.running = new Gauge({
      name: "docket_worker_jobs_running",
      help: "Jobs the worker is running now",
      registers,
      collect: () => {
        if (this.runningSource) this.running.set(this.runningSource());
      },
    });
    this.queuePending = new Gauge({
      name: "docket_worker_queue_pending",
      help: "Jobs waiting per lane, as this worker's intake last read them from consumer info",
      labelNames: ["lane"],
      registers,
      collect: () => {
        for (const [lane, n] of Object.entries(this.queueSource?.() ?? {})) this.queuePending.set({ lane }, n);
      },
    });
    this.tokensPerSecond = new Gauge({
      name: "docket_worker_tokens_per_second",
      help: "Aggregate generated tokens per second, as the batcher last measured",
      registers,
    });
    this.jobLatency = new Histogram({
      name: "docket_worker_job_run_seconds",
      help: "Time from a job's start on this worker to its result",
      labelNames: ["lane", "task"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: "docket_worker_queue_wait_seconds",
      help: "Time from a job's submission to its start on this worker",
      labelNames: ["lane"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.jobs = new Counter({
      name: "docket_worker_jobs_total",
      help: "Jobs this worker finished, by outcome (completed, failed, retried)",
      labelNames: ["lane", "task", "outcome"],
      registers,
    });
    this.modelLoadSeconds = new Gauge({
      name: "docket_worker_model_load_seconds",
      help: "Time the model took to load",
      registers,
    });
    this.memoryPlanBytes = new Gauge({
      name: "docket_worker_memory_plan_bytes",
      help: "Memory plan: model weights, context (KV cache and state), their total, and the budget",
      labelNames: ["part"],
      registers,
    });
    this.ready = new Gauge({
      name: "docket_worker_ready",
      help: "1 when the model is loaded and NATS connected",
      registers,
      collect: () => {
        if (this.readySource) this.ready.set(this.readySource() ? 1 : 0);
      },
    });
    this.prefixLookups = new Counter({
      name: "docket_worker_prefix_lookups_total",
      help: "Document-prefix lookups by where the prefix came from: live (a sequence held it), checkpoint (a saved state), evaluated (a miss)",
      labelNames: ["source"],
      registers,
    });
    this.prefixTokensSaved = new Counter({
      name: "docket_worker_prefix_tokens_saved_total",
      help: "Prompt tokens whose evaluated state was reused instead of computed",
      registers,
    });
    this.prefixCheckpoints = new Gauge({
      name: "docket_worker_prefix_checkpoints",
      help: "Document-prefix checkpoint files the worker keeps",
      registers,
      collect: () => {
        const s = this.prefixSource?.();
        if (s) this.prefixCheckpoints.set(s.checkpoints);
      },
    });
    this.prefixCheckpointBytes = new Gauge({
      name: "docket_worker_prefix_checkpoint_bytes",
      help: "Bytes of the document-prefix checkpoint files (within DOCKET_PREFIX_CACHE_BYTES)",
      registers,
      collect: () => {
        const s = this.prefixSource?.();
        if (s) this.prefixCheckpointBytes.set(s.checkpointBytes);
      },
    });
    // Totals kept by the engine's decode-step policy, copied on scrape (reset + inc keeps them counters).
    const copied = (counter: () => Counter, read: (s: { steps: number; items: number }) => number) => () => {
      const s = this.stepsSource?.();
      if (!s) return;
      counter().reset();
      counter().inc(read(s));
    };
    this.decodeSteps = new Counter({
      name: "docket_worker_decode_steps_total",
      help: "Decode steps the engine ran",
      registers,
      collect: copied(
        () => this.decodeSteps,
        (s) => s.steps,
      ),
    });
    this.decodeStepSequences = new Counter({
      name: "docket_worker_decode_step_sequences_total",
      help: "Sequences the decode steps carried, summed: over docket_worker_decode_steps_total, the batch really decoded together",
      registers,
      collect: copied(
        () => this.decodeStepSequences,
        (s) => s.items,
      ),
    });
    this.info = new Gauge({
      name: "docket_worker_info",
      help: "The worker's model (value is always 1)",
      labelNames: ["model"],
      registers,
    });
  }

  setMemoryPlan(plan: Partial<Record<MemoryPart, number>>): void {
    for (const [part, bytes] of Object.entries(plan)) if (bytes !== undefined) this.memoryPlanBytes.set({ part }, bytes);
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
