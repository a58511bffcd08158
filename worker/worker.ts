import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../ops/log.ts";
import { connectNats } from "../ops/nats.ts";
import type { Config } from "../schema/config.ts";
import { Documents } from "./documents.ts";
import { Engine } from "./engine.ts";
import { EventPublisher } from "./events.ts";
import { Intake } from "./intake.ts";
import { resolveModel } from "./model.ts";
import { WorkerObservability } from "./observability.ts";
import { Runner } from "./runner.ts";
import { SlotPool } from "./slots.ts";

export interface Worker {
  id: string;
  engine: Engine;
  runner: Runner;
  nc: NatsConnection;
  observability: WorkerObservability;
  /** Stops pulling, lets in-flight jobs finish for up to graceMs, returns the rest to the queue, closes. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Wires a worker: model, engine (one context, N sequences), NATS, intake, runner.
 * Shutdown order, in close(): stop intake, wait for in-flight jobs (grace), abort and nak the rest,
 * drain NATS, dispose the engine.
 */
export async function startWorker(config: Config, log: Logger): Promise<Worker> {
  const id = config.DOCKET_WORKER_ID ?? `${hostname()}-${process.pid}`;
  const observability = await WorkerObservability.start(config, log, id);
  const { path } = await resolveModel({ model: config.DOCKET_MODEL, directory: config.DOCKET_MODELS_DIR, log });
  const loadStarted = performance.now();
  const engine = await Engine.load({
    modelPath: path,
    gpu: config.DOCKET_GPU === "false" ? false : config.DOCKET_GPU,
    threads: config.DOCKET_THREADS,
    sequences: config.DOCKET_MAX_BATCH,
    contextSize: config.DOCKET_CONTEXT_SIZE,
    log,
  });
  const nc = await connectNats(config.NATS_URL, `docket-worker-${id}`);
  const runner = new Runner(engine, new EventPublisher(nc, id), new Documents(nc), log, {
    maxDeliver: config.DOCKET_MAX_DELIVER,
    ackWaitMs: config.DOCKET_ACK_WAIT * 1000,
    defaultMaxTokens: config.DOCKET_MAX_TOKENS,
    progressEveryMs: 500,
  });
  const slots = new SlotPool(engine.sequences);
  const intake = new Intake(nc, slots, (m) => runner.run(m), log);
  await intake.start();
  await observability.attach({ engine, nc, runner, modelLoadMs: performance.now() - loadStarted });
  log.info({ workerId: id, model: engine.modelName, sequences: engine.sequences }, "worker ready");

  return {
    id,
    engine,
    runner,
    nc,
    observability,
    async close(graceMs = config.DOCKET_GRACE_SECONDS * 1000) {
      await intake.stop();
      const graceOver = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
      if ((await Promise.race([slots.idle(), graceOver])) === "timeout") {
        log.warn({ running: runner.running }, "grace period over; returning unfinished jobs to the queue");
        runner.abortAll();
        await slots.idle();
      }
      await observability.close();
      await nc.drain().catch(() => undefined);
      await engine.close();
    },
  };
}
