import type { NatsConnection } from "@nats-io/transport-node";
import type { Gauge } from "prom-client";
import type { Logger } from "../runtime/log.ts";
import type { Config } from "../schema/config.ts";
import type { WorkerHeartbeat } from "../schema/heartbeat.ts";
import type { Engine } from "./engine.ts";
import { Heartbeat } from "./heartbeat.ts";
import { WorkerMetrics } from "./metrics.ts";
import { WorkerMonitor } from "./monitor.ts";
import type { PrefixStats } from "./prefix-cache.ts";
import type { Runner } from "./runner.ts";

export interface AttachOptions {
  engine: Engine;
  nc: NatsConnection;
  runner: Runner;
  modelLoadMs: number;
  /** The model name the worker serves and whether it takes jobs naming no model: advertised in the heartbeat. */
  served: { model: string; default: boolean };
  /** Documents whose prefix it holds (routing: the heartbeat's `documents`). */
  documents: () => string[];
  /** Jobs routed to it still queued (the heartbeat's `routed`). */
  routed: () => number;
}

/**
 * A worker's operations surface: metrics, the monitor HTTP server (started before the model loads) and,
 * once attached to the loaded engine and NATS, readiness and the KV heartbeat.
 * Close order: heartbeat (deletes its key while NATS is still up), then the HTTP server.
 */
export class WorkerObservability {
  readonly metrics: WorkerMetrics;
  private attached?: AttachOptions & { heartbeat: Heartbeat };
  private connected = false;
  private readonly startedAt = new Date().toISOString();

  private constructor(
    readonly id: string,
    private readonly config: Config,
    private readonly log: Logger,
    private monitor?: WorkerMonitor,
  ) {
    this.metrics = new WorkerMetrics(id);
    this.metrics.readySource = () => this.notReady() === undefined;
  }

  static async start(config: Config, log: Logger, id: string): Promise<WorkerObservability> {
    const o = new WorkerObservability(id, config, log);
    o.monitor = await WorkerMonitor.start({
      host: config.DOCKET_HOST,
      port: config.DOCKET_WORKER_PORT,
      metrics: o.metrics,
      notReady: () => o.notReady(),
      log,
    });
    return o;
  }

  get url(): string | undefined {
    return this.monitor?.url;
  }

  notReady(): string | undefined {
    if (!this.attached) return "model loading";
    if (this.attached.nc.isClosed() || !this.connected) return "NATS disconnected";
    return undefined;
  }

  async attach(a: AttachOptions): Promise<void> {
    const { engine, nc, runner } = a;
    const m = this.metrics;
    m.info.set({ model: engine.modelName }, 1);
    m.modelLoadSeconds.set(a.modelLoadMs / 1000);
    m.sequences.set(engine.sequences);
    // Until the adaptive batcher sets it, every sequence of the context is in use.
    m.batchSize.set(engine.sequences);
    m.runningSource = () => runner.running;
    this.connected = !nc.isClosed();
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") this.connected = false;
        else if (s.type === "reconnect") this.connected = true;
      }
    })();
    const modelBytes = engine.model.size;
    const contextBytes = engine.context.stateSize;
    m.setMemoryPlan({
      model: modelBytes,
      context: contextBytes,
      total: modelBytes + contextBytes,
      budget: this.config.DOCKET_GPU_MEMORY_BYTES,
    });
    const heartbeat = new Heartbeat(
      nc,
      async () => ({
        v: 1,
        id: this.id,
        model: a.served.model,
        default: a.served.default,
        ...(engine.modelName !== a.served.model ? { loaded: engine.modelName } : {}),
        batchSize: await gaugeValue(m.batchSize),
        sequences: engine.sequences,
        running: runner.running,
        tokensPerSecond: await gaugeValue(m.tokensPerSecond),
        prefix: prefixSummary(engine.prefixes.stats),
        documents: a.documents(),
        routed: a.routed(),
        ...(this.url ? { metricsUrl: `${this.url}/metrics` } : {}),
        startedAt: this.startedAt,
        at: new Date().toISOString(),
      }),
      this.log,
    );
    this.attached = { ...a, heartbeat };
    await heartbeat.start();
  }

  /** A heartbeat now, when attached: something the producer routes by changed. */
  beatNow(): void {
    this.attached?.heartbeat.beatNow();
  }

  async close(): Promise<void> {
    await this.attached?.heartbeat.stop();
    await this.monitor?.close();
    this.monitor = undefined;
  }
}

async function gaugeValue(g: Gauge): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

/** The heartbeat's view of prefix reuse: lookups, hits (live or checkpoint), tokens saved. */
function prefixSummary(s: PrefixStats): NonNullable<WorkerHeartbeat["prefix"]> {
  const hits = s.lookups.live + s.lookups.checkpoint;
  return { lookups: hits + s.lookups.evaluated, hits, tokensSaved: s.tokensSaved };
}
