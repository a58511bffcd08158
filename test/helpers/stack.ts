import { on } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DestinationStream } from "pino";
import { type Producer, startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import type { BatchState } from "../../schema/batch.ts";
import { type Config, loadConfig } from "../../schema/config.ts";
import type { JobState } from "../../schema/job.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { startTestNats, type TestNats } from "./nats.ts";

export interface TestStack {
  nats: TestNats;
  config: Config;
  producer: Producer;
  worker?: Worker;
  dir: string;
  /** Waits for a job to reach one of `states` (pushed by the recorder, with a deadline). */
  waitFor(jobId: string, states: readonly JobState[], timeoutMs?: number): Promise<JobState>;
  /** Waits for a batch to reach one of `states` (read first, then after each job change the recorder applies). */
  waitForBatch(batchId: string, states: readonly BatchState[], timeoutMs?: number): Promise<BatchState>;
  stop(): Promise<void>;
}

/** Test defaults: a real nats-server, a temporary SQLite file, the generated tiny model on one CPU thread. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DOCKET_PORT: "0",
    DOCKET_GPU: "false",
    DOCKET_THREADS: "1",
    DOCKET_MAX_BATCH: "4",
    DOCKET_CONTEXT_SIZE: "1024",
    DOCKET_MAX_TOKENS: "24",
    DOCKET_LOG_LEVEL: "silent",
    DOCKET_WORKER_PORT: "0",
    ...(process.env.DOCKET_MODEL ? { DOCKET_MODEL: process.env.DOCKET_MODEL } : {}),
    ...overrides,
  });
}

export async function startStack(
  options: {
    worker?: boolean;
    env?: Record<string, string>;
    /** Where producer and worker logs go (JSON lines) instead of nowhere; set DOCKET_LOG_LEVEL in env too. */
    logTo?: DestinationStream;
  } = {},
): Promise<TestStack> {
  const nats = await startTestNats();
  const dir = await mkdtemp(join(tmpdir(), "docket-test-"));
  const config = testConfig({ NATS_URL: nats.url, DOCKET_DB: join(dir, "docket.db"), ...options.env });
  const log = createLogger("test", config.DOCKET_LOG_LEVEL, undefined, options.logTo);
  const producer = await startProducer(config, log);
  const worker = options.worker === false ? undefined : await startWorker(config, log);
  return {
    nats,
    config,
    producer,
    worker,
    dir,
    waitFor: (jobId, states, timeoutMs) =>
      producer.recorder.waitFor(jobId, states, () => producer.store.get(jobId)?.state, timeoutMs),
    async waitForBatch(batchId, states, timeoutMs = 30_000) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), timeoutMs);
      const changes = on(producer.recorder, "change", { signal: ac.signal });
      const state = () => producer.batches.get(batchId)?.state;
      try {
        let now = state();
        if (now && states.includes(now)) return now;
        for await (const _ of changes) {
          now = state();
          if (now && states.includes(now)) return now;
        }
        throw new Error("recorder closed");
      } catch (err) {
        if (ac.signal.aborted) throw new Error(`batch ${batchId} is ${state()}, not ${states.join("|")}, after ${timeoutMs} ms`);
        throw err;
      } finally {
        clearTimeout(timer);
        await changes.return?.();
      }
    },
    async stop() {
      await worker?.close(0);
      await producer.close();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
