import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { connectNats, natsSecurity } from "../runtime/nats.ts";
import { ensureModelConsumers, provisionOptions } from "../runtime/provision.ts";
import type { Config } from "../schema/config.ts";
import { type Lane, workerToken } from "../schema/subjects.ts";
import { AdaptiveBatcher, type BatcherStatus } from "./batcher.ts";
import { Cancellations } from "./cancellations.ts";
import { Documents } from "./documents.ts";
import { Engine } from "./engine.ts";
import { EventPublisher } from "./events.ts";
import { Peers, RecentDocuments } from "./heartbeat.ts";
import { Intake } from "./intake.ts";
import { resolveModel, servedModelName } from "./model.ts";
import { WorkerObservability } from "./observability.ts";
import { describePlan, INTERACTIVE_RESERVE, type MemoryPlan, planMemoryForModel, planSettings, workerBudget } from "./planner.ts";
import { Runner } from "./runner.ts";
import { SlotPool } from "./slots.ts";

export interface WorkerStatus {
  id: string;
  /** The model it runs (the fallback's name after the degradation ladder fell back). */
  model: string;
  /** The model name it serves: jobs naming it come to it. */
  servedModel: string;
  /** Whether it also takes jobs naming no model. */
  servesDefault: boolean;
  /** Sequences the context holds. */
  sequences: number;
  /** Sequences active now: the batch size. */
  batchSize: number;
  mode: "adaptive" | "fixed";
  busy: number;
  tokensPerSecond: number;
  /** Jobs waiting per lane (consumer info num_pending). */
  queueDepth: Record<Lane, number>;
  /** Tokens served lately per API key over its weight ("" for jobs of no key): how the shared lanes are split. */
  fairShare: Record<string, number>;
  batcher?: BatcherStatus;
}

export interface Worker {
  id: string;
  plan: MemoryPlan;
  engine: Engine;
  runner: Runner;
  nc: NatsConnection;
  status(): WorkerStatus;
  observability: WorkerObservability;
  /** Stops pulling, lets in-flight jobs finish for up to graceMs, returns the rest to the queue, closes. */
  close(graceMs?: number): Promise<void>;
}

/** How often the batcher samples busy slots and tokens. */
const SAMPLE_MS = 250;

/**
 * Wires a worker: model, engine (one context, N sequences), NATS, intake, runner, batcher.
 * Shutdown order, in close(): stop intake and cancel watch, wait for in-flight jobs (grace), abort
 * and nak the rest, stop the batcher, drain NATS, dispose the engine.
 */
export async function startWorker(config: Config, log: Logger): Promise<Worker> {
  const id = config.DOCKET_WORKER_ID ?? `${hostname()}-${process.pid}`;
  const observability = await WorkerObservability.start(config, log, id);
  const { path } = await resolveModel({
    model: config.DOCKET_MODEL,
    quantization: config.DOCKET_QUANTIZATION,
    directory: config.DOCKET_MODELS_DIR,
    log,
  }).catch(async (err) => {
    await observability.close();
    throw err;
  });
  // The name jobs route by (docs/scaling.md): the configured model's, also when the ladder falls back.
  const servedModel = await servedModelName(config.DOCKET_MODEL_NAME, path);
  const servesDefault = !config.DOCKET_DEFAULT_MODEL || config.DOCKET_DEFAULT_MODEL === servedModel;
  const loadStarted = performance.now();
  const fallback = config.DOCKET_FALLBACK_MODEL
    ? (
        await resolveModel({ model: config.DOCKET_FALLBACK_MODEL, directory: config.DOCKET_MODELS_DIR, log }).catch((err) => {
          log.warn({ err: (err as Error).message }, "DOCKET_FALLBACK_MODEL cannot be used");
          return undefined;
        })
      )?.path
    : undefined;
  // The memory planner sizes the context and places the layers from the GGUF metadata and the budget; it
  // refuses to start (MemoryPlanError, code insufficient_memory) when even one sequence does not fit.
  const plan = await planMemoryForModel(path, { ...workerBudget(config), ...planSettings(config) }).catch(async (err) => {
    await observability.close();
    throw err;
  });
  log.info(
    { sequences: plan.sequences, contextSize: plan.contextSize, gpuLayers: plan.gpuLayers, totalBytes: plan.totalBytes },
    describePlan(plan),
  );
  const engine = await Engine.load({
    modelPath: path,
    modelName: servedModel,
    ...(fallback ? { fallbackModelPath: fallback } : {}),
    gpu: config.DOCKET_GPU === "false" ? false : config.DOCKET_GPU,
    threads: config.DOCKET_THREADS,
    ...(config.DOCKET_STEP_TOKENS > 0 ? { stepTokens: config.DOCKET_STEP_TOKENS } : {}),
    stepMs: config.DOCKET_STEP_MS,
    lockstepMs: config.DOCKET_LOCKSTEP_MS,
    // One sequence more than the largest batch: the interactive lane's reserve.
    sequences: plan.sequences,
    contextSize: plan.contextSize,
    prefixCache: {
      reuse: config.DOCKET_PREFIX_REUSE === "true",
      dir: config.DOCKET_PREFIX_CACHE_DIR ?? join(tmpdir(), "docket-prefix"),
      budgetBytes: config.DOCKET_PREFIX_CACHE_BYTES,
    },
    ...(plan.engineGpuLayers !== undefined ? { gpuLayers: plan.engineGpuLayers } : {}),
    log,
  });
  const reserve = engine.sequences > 1 ? INTERACTIVE_RESERVE : 0;
  const nc = await connectNats(config.NATS_URL, `docket-worker-${id}`, natsSecurity(config));
  if (config.DOCKET_PREFIX_SHARE === "true") engine.prefixes.share(nc);
  const fixed = config.DOCKET_BATCH_SIZE > 0;
  const batcher = fixed
    ? undefined
    : new AdaptiveBatcher({
        max: engine.sequences - reserve,
        latencyTargetMs: config.DOCKET_LATENCY_TARGET_MS,
        windowMs: config.DOCKET_BATCH_WINDOW_MS,
      });
  const slots = new SlotPool(
    fixed ? Math.min(config.DOCKET_BATCH_SIZE, engine.sequences - reserve) : (batcher?.current ?? 1),
    reserve,
  );
  const cancellations = new Cancellations(nc, log);
  // The documents whose prefix it holds, for the producer's routing (heartbeat `documents`).
  const documents = new RecentDocuments();
  const prefixReuse = config.DOCKET_PREFIX_REUSE === "true";
  const peers = new Peers(nc);
  const runner = new Runner(engine, new EventPublisher(nc, id), new Documents(nc), cancellations, log, {
    maxDeliver: config.DOCKET_MAX_DELIVER,
    ackWaitMs: config.DOCKET_ACK_WAIT_SECONDS * 1000,
    defaultMaxTokens: config.DOCKET_MAX_TOKENS,
    progressEveryMs: 500,
    // A job on a document this worker did not list: it holds the document's prefix from now on, and says so at once
    // (a heartbeat now, not in up to 5 s), so that the document's next tasks are routed here.
    onStarted: (job) => {
      if (prefixReuse && documents.add(job.input.sha256)) observability.beatNow();
    },
    onCompleted: (job, result) => {
      batcher?.addJob(result.timings.runMs);
      const m = observability.metrics;
      m.jobLatency.observe({ lane: job.lane, task: job.task }, result.timings.runMs / 1000);
      m.queueWait.observe({ lane: job.lane }, result.timings.queueMs / 1000);
      m.jobs.inc({ lane: job.lane, task: job.task, outcome: "succeeded" });
    },
    onEngineFailed: () => {
      const decision = batcher?.engineFailed();
      if (!decision) return;
      slots.resize(decision.limit);
      log.warn({ ...decision }, "degradation: fewer sequences after an engine failure");
    },
  });
  await cancellations.watch((jobId) => runner.cancel(jobId));
  const intake = new Intake(nc, slots, (m) => runner.run(m), log, {
    idlePullMs: 1_000,
    model: servedModel,
    servesDefault,
    prepare: () => ensureModelConsumers(nc, servedModel, provisionOptions(config)),
    worker: workerToken(id),
    alive: (worker) => peers.alive(worker),
  });
  await intake.start();

  await observability.attach({
    engine,
    nc,
    runner,
    modelLoadMs: performance.now() - loadStarted,
    served: { model: servedModel, default: servesDefault },
    documents: () => documents.list(),
    routed: () => intake.routedPending,
  });
  const metrics = observability.metrics;
  metrics.queueSource = () => intake.pending;
  metrics.setMemoryPlan({
    model: plan.gpuWeightBytes,
    context: plan.gpuContextBytes,
    total: plan.totalBytes,
    budget: plan.budgetBytes,
  });
  metrics.batchSize.set(slots.size);
  metrics.prefixSource = () => engine.prefixes.stats;
  metrics.stepsSource = () => engine.steps;
  engine.onPrefix = (source, reused) => {
    metrics.prefixLookups.inc({ source });
    metrics.prefixTokensSaved.inc(reused);
  };

  let countedTokens = engine.generatedTokens;
  let tokensPerSecond = 0;
  let lastSample = Date.now();
  const sampler = setInterval(() => {
    const now = Date.now();
    const tokens = engine.generatedTokens - countedTokens;
    countedTokens = engine.generatedTokens;
    tokensPerSecond = tokensPerSecond * 0.8 + ((tokens * 1000) / Math.max(1, now - lastSample)) * 0.2;
    lastSample = now;
    metrics.tokensPerSecond.set(Math.round(tokensPerSecond * 10) / 10);
    if (!batcher) return;
    batcher.addTokens(tokens);
    batcher.sample(slots.saturated);
    const decision = batcher.tick(now);
    if (decision) {
      slots.resize(decision.limit);
      metrics.batchSize.set(decision.limit);
      log.info({ ...decision, queueDepth: intake.pending }, "batch size changed");
    }
  }, SAMPLE_MS);
  sampler.unref();

  log.info(
    {
      workerId: id,
      model: servedModel,
      servesDefault,
      ...(engine.modelName !== servedModel ? { loaded: engine.modelName } : {}),
      sequences: engine.sequences,
      batch: fixed ? slots.size : "adaptive",
    },
    "worker ready",
  );

  return {
    id,
    plan,
    engine,
    runner,
    nc,
    status: () => ({
      id,
      model: engine.modelName,
      servedModel,
      servesDefault,
      sequences: engine.sequences,
      batchSize: slots.size,
      mode: fixed ? "fixed" : "adaptive",
      busy: slots.busy,
      tokensPerSecond: Math.round(tokensPerSecond * 10) / 10,
      queueDepth: { ...intake.pending },
      fairShare: intake.fair.service(),
      decodeSteps: { ...engine.steps, waitedMs: Math.round(engine.steps.waitedMs) },
      ...(batcher ? { batcher: batcher.status() } : {}),
    }),
    observability,
    async close(graceMs = config.DOCKET_GRACE_SECONDS * 1000) {
      await intake.stop();
      cancellations.stop();
      const graceOver = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
      if ((await Promise.race([slots.idle(), graceOver])) === "timeout") {
        log.warn({ running: runner.running }, "grace period over; returning unfinished jobs to the queue");
        runner.abortAll();
        await slots.idle();
      }
      clearInterval(sampler);
      await observability.close();
      await nc.drain().catch(() => undefined);
      await engine.close();
    },
  };
}
