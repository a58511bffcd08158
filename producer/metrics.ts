import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { LATENCY_BUCKETS } from "../runtime/metrics.ts";
import { JOBS_STREAM, LANES, workerConsumerOf } from "../schema/subjects.ts";
import type { JobChange, Recorder } from "./recorder.ts";
import type { JobStore } from "./stores/jobs.ts";
import type { UsageStore } from "./stores/usage.ts";

export const WEBHOOK_OUTCOMES = ["delivered", "retry", "dead"] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

export interface QueueDepth {
  /** Jobs waiting in the lane's consumer, not yet delivered to a worker. */
  pending: number;
  /** Jobs delivered to a worker and not yet acked: running, or about to be redelivered. */
  ackPending: number;
}

/**
 * Per-lane depth from the worker consumers' info (one consumer list): a lane sums the default model's consumer and
 * every model's. Jobs naming a model that no worker has served yet have no consumer to count them: the
 * dashboard's models table counts those from SQLite.
 */
export async function queueDepth(nc: NatsConnection): Promise<Record<string, QueueDepth>> {
  const jsm = await jetstreamManager(nc, { timeout: 2_000 });
  const out: Record<string, QueueDepth> = {};
  for (const lane of LANES) out[lane] = { pending: 0, ackPending: 0 };
  for await (const info of jsm.consumers.list(JOBS_STREAM)) {
    const lane = workerConsumerOf(info.name)?.lane;
    const depth = lane ? out[lane] : undefined;
    if (!depth) continue;
    depth.pending += info.num_pending;
    depth.ackPending += info.num_ack_pending;
  }
  return out;
}

/**
 * The producer's Prometheus metrics. Gauges of jobs by state and queue depth are read on scrape (SQLite,
 * JetStream consumer info); latency, queue wait and tokens come from the events the recorder applies, each
 * once. Usage per API key is read on scrape from usage_daily (totals since the key's first job), labelled with the
 * key's name: one series per key and kind, so the label set grows with the keys an admin creates, not with traffic.
 * The webhook dispatcher counts its deliveries in webhookDeliveries.
 */
export class ProducerMetrics {
  readonly registry = new Registry();
  readonly webhookDeliveries: Counter<"outcome">;
  readonly jobsFinished: Counter<"lane" | "task" | "state">;
  readonly jobLatency: Histogram<"lane" | "task">;
  readonly queueWait: Histogram<"lane">;
  readonly tokens: Counter<"lane" | "kind">;
  private readonly onChange = (c: JobChange) => this.observe(c);

  constructor(
    store: JobStore,
    nc: NatsConnection,
    private readonly recorder: Recorder,
    usage?: {
      store: UsageStore;
      keyName: (names: Map<string, string>, keyId: string) => string;
      names: () => Map<string, string>;
    },
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: "docket_producer_" });
    const registers = [this.registry];
    const jobs: Gauge<"state" | "lane"> = new Gauge({
      name: "docket_jobs",
      help: "Jobs in the database by state and lane",
      labelNames: ["state", "lane"],
      registers,
      collect: () => {
        jobs.reset();
        for (const r of store.countByStateAndLane()) jobs.set({ state: r.state, lane: r.lane }, r.n);
      },
    });
    // prom-client collects every metric at once: the three gauges share one read of the consumers per scrape.
    let depth: { at: number; read: Promise<Record<string, QueueDepth> | undefined> } | undefined;
    const readDepth = () => {
      if (!depth || Date.now() - depth.at > 500) {
        depth = { at: Date.now(), read: queueDepth(nc).catch(() => undefined) };
      }
      return depth.read;
    };
    const perLane = (name: string, help: string, pick: (d: QueueDepth) => number) => {
      const g: Gauge<"lane"> = new Gauge({
        name,
        help,
        labelNames: ["lane"],
        registers,
        collect: async () => {
          const d = await readDepth();
          for (const [lane, v] of Object.entries(d ?? {})) g.set({ lane }, pick(v));
        },
      });
    };
    perLane("docket_queue_pending", "Jobs waiting in a lane's JetStream consumer (num_pending)", (d) => d.pending);
    perLane("docket_queue_ack_pending", "Jobs delivered to workers and not yet acked (num_ack_pending)", (d) => d.ackPending);
    const up: Gauge = new Gauge({
      name: "docket_nats_up",
      help: "1 when the producer could read the job consumers at this scrape",
      registers,
      collect: async () => up.set((await readDepth()) ? 1 : 0),
    });
    this.webhookDeliveries = new Counter({
      name: "docket_webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome: delivered, retry (will be tried again), dead (gave up)",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of WEBHOOK_OUTCOMES) this.webhookDeliveries.inc({ outcome }, 0);
    this.jobsFinished = new Counter({
      name: "docket_jobs_finished_total",
      help: "Jobs that reached a final state, as the recorder applied them",
      labelNames: ["lane", "task", "state"],
      registers,
    });
    this.jobLatency = new Histogram({
      name: "docket_job_run_seconds",
      help: "Time from a job's start on a worker to its result (result.timings.runMs)",
      labelNames: ["lane", "task"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: "docket_job_queue_wait_seconds",
      help: "Time from a job's submission to its start on a worker (result.timings.queueMs)",
      labelNames: ["lane"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.tokens = new Counter({
      name: "docket_tokens_total",
      help: "Tokens of succeeded jobs: prompt and completion",
      labelNames: ["lane", "kind"],
      registers,
    });
    if (usage) this.usageByKey(usage, registers);
    recorder.on("change", this.onChange);
  }

  /** docket_key_* counters from usage_daily, by key name (keys of one name are summed). */
  private usageByKey(usage: NonNullable<ConstructorParameters<typeof ProducerMetrics>[3]>, registers: Registry[]): void {
    // The three counters are collected at once: one read of the table and of the key names per scrape.
    let totals: { at: number; rows: (ReturnType<UsageStore["totalsByKey"]>[number] & { name: string })[] } | undefined;
    const read = () => {
      if (!totals || Date.now() - totals.at > 500) {
        const names = usage.names();
        totals = { at: Date.now(), rows: usage.store.totalsByKey().map((r) => ({ ...r, name: usage.keyName(names, r.key) })) };
      }
      return totals.rows;
    };
    const counter = <L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      values: (r: ReturnType<UsageStore["totalsByKey"]>[number]) => [Partial<Record<L, string>>, number][],
    ) => {
      const c: Counter<"key" | L> = new Counter({
        name,
        help,
        labelNames: ["key", ...labelNames],
        registers,
        collect: () => {
          c.reset();
          for (const r of read()) for (const [labels, n] of values(r)) if (n > 0) c.inc({ key: r.name, ...labels } as never, n);
        },
      });
    };
    counter(
      "docket_key_tokens_total",
      "Tokens of an API key's succeeded jobs, by kind: prompt, completion, cached (of prompt)",
      ["kind"],
      (r) => [
        [{ kind: "prompt" }, r.promptTokens],
        [{ kind: "completion" }, r.completionTokens],
        [{ kind: "cached" }, r.cachedTokens],
      ],
    );
    counter("docket_key_jobs_total", "An API key's jobs that ended, by state: succeeded, failed", ["state"], (r) => [
      [{ state: "succeeded" }, r.succeeded],
      [{ state: "failed" }, r.failed],
    ]);
    counter("docket_key_documents_total", "An API key's jobs on a document (every task but chat) that ended", [], (r) => [
      [{}, r.documents],
    ]);
  }

  private observe({ state, event }: JobChange): void {
    if (state !== "succeeded" && state !== "failed" && state !== "cancelled") return;
    const lane = event.lane ?? "default";
    this.jobsFinished.inc({ lane, task: event.task ?? "unknown", state });
    const r = event.result;
    if (state !== "succeeded" || !r) return;
    this.jobLatency.observe({ lane, task: event.task ?? "unknown" }, r.timings.runMs / 1000);
    this.queueWait.observe({ lane }, r.timings.queueMs / 1000);
    this.tokens.inc({ lane, kind: "prompt" }, r.usage.promptTokens);
    this.tokens.inc({ lane, kind: "completion" }, r.usage.completionTokens);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.recorder.off("change", this.onChange);
  }
}
