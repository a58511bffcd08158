import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../ops/log.ts";
import { connectNats, natsSecurity } from "../ops/nats.ts";
import type { Config } from "../schema/config.ts";
import { Documents } from "./documents.ts";
import { Engine } from "./engine.ts";
import { EventPublisher } from "./events.ts";
import { Intake } from "./intake.ts";
import { resolveModel } from "./model.ts";
import { Runner } from "./runner.ts";
import { SlotPool } from "./slots.ts";

export interface Worker {
  id: string;
  engine: Engine;
  runner: Runner;
  nc: NatsConnection;
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
  const { path } = await resolveModel({ model: config.DOCKET_MODEL, log });
  const engine = await Engine.load({
    modelPath: path,
    gpu: config.DOCKET_GPU === "false" ? false : config.DOCKET_GPU,
    threads: config.DOCKET_THREADS,
    sequences: config.DOCKET_MAX_BATCH,
    contextSize: config.DOCKET_CONTEXT_SIZE,
    log,
  });
  const nc = await connectNats(config.NATS_URL, `docket-worker-${id}`, natsSecurity(config));
  const runner = new Runner(engine, new EventPublisher(nc, id), new Documents(nc), log, {
    maxDeliver: config.DOCKET_MAX_DELIVER,
    ackWaitMs: config.DOCKET_ACK_WAIT * 1000,
    defaultMaxTokens: config.DOCKET_MAX_TOKENS,
    progressEveryMs: 500,
  });
  const slots = new SlotPool(engine.sequences);
  const intake = new Intake(nc, slots, (m) => runner.run(m), log);
  await intake.start();
  log.info({ workerId: id, model: engine.modelName, sequences: engine.sequences }, "worker ready");

  return {
    id,
    engine,
    runner,
    nc,
    async close(graceMs = config.DOCKET_GRACE_SECONDS * 1000) {
      await intake.stop();
      const graceOver = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
      if ((await Promise.race([slots.idle(), graceOver])) === "timeout") {
        log.warn({ running: runner.running }, "grace period over; returning unfinished jobs to the queue");
        runner.abortAll();
        await slots.idle();
      }
      await nc.drain().catch(() => undefined);
      await engine.close();
    },
  };
}
