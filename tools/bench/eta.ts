/**
 * npm run bench:eta: how close the producer's queue estimate (GET /v1/batches/:id `queue`) comes to when a batch
 * really finishes. Starts its own nats-server, a producer and one worker on a generated model, warms the worker
 * up (so its heartbeats carry a measured tokens/s), submits a batch of BENCH_ETA_JOBS short jobs, and prints the
 * batch's predicted finish (at submission, then every few seconds) against the real one, and each job's predicted
 * finish at submission against its own. Printed, not asserted; written to bench/results/eta.json.
 * BENCH_ETA_MODEL: bench (default, q8_0 ~27 MB) or tiny (the test model); BENCH_ETA_JOBS (200), BENCH_ETA_MAX_TOKENS
 * (16).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import type { JobView } from "../../schema/api.ts";
import type { BatchView } from "../../schema/batch.ts";
import { loadConfig } from "../../schema/config.ts";
import { HEARTBEAT_INTERVAL_MS } from "../../schema/heartbeat.ts";
import { startWorker } from "../../worker/worker.ts";
import { BENCH_MODEL, ensureDemoModel, TEST_MODEL } from "../model/demo-model.ts";
import { startLocalJetStream } from "../nats-server.ts";

const JOBS = Number(process.env.BENCH_ETA_JOBS ?? 200);
const MAX_TOKENS = Number(process.env.BENCH_ETA_MAX_TOKENS ?? 16);
const MODEL = process.env.BENCH_ETA_MODEL === "tiny" ? TEST_MODEL : BENCH_MODEL;
const WARMUP_JOBS = 24;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const secs = (ms: number) => +(ms / 1000).toFixed(1);
const doc = (i: number) => `Clause ${i}. The lessee pays rent of ${100 + i} euros on the first day of each month.`;

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "docket-bench-eta-"));
  const nats = await startLocalJetStream(join(dir, "nats"));
  const config = loadConfig({
    DOCKET_PORT: "0",
    NATS_URL: nats.url,
    DOCKET_DB: join(dir, "docket.db"),
    DOCKET_MODEL: await ensureDemoModel(MODEL),
    DOCKET_GPU: process.env.DOCKET_GPU ?? "false",
    DOCKET_MAX_BATCH: "4",
    DOCKET_CONTEXT_SIZE: "1024",
    DOCKET_WORKER_PORT: "0",
    DOCKET_RATE_LIMIT: "0",
    DOCKET_LOG_LEVEL: process.env.BENCH_LOG ?? "warn",
    ...(process.env.DOCKET_THREADS ? { DOCKET_THREADS: process.env.DOCKET_THREADS } : {}),
  });
  const log = createLogger("bench", config.DOCKET_LOG_LEVEL);
  const producer = await startProducer(config, log);
  const worker = await startWorker(config, log);
  const api = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${producer.url}${path}`, {
      method: body ? "POST" : "GET",
      ...(body ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const batchOf = (n: number, from: number) => ({
    task: "summarize",
    params: { maxTokens: MAX_TOKENS },
    items: Array.from({ length: n }, (_, i) => ({ text: doc(from + i), customId: `doc-${from + i}` })),
  });
  const untilEnded = async (id: string) => {
    for (;;) {
      const b = await api<BatchView>(`/v1/batches/${id}`);
      if (b.finishedAt) return b;
      await sleep(200);
    }
  };

  // Warm-up: the worker's heartbeats (every 5 s) must have carried a tokens/s measured with work running.
  const warmup = await api<BatchView>("/v1/batches", batchOf(WARMUP_JOBS, 0));
  const warmStarted = Date.now();
  await untilEnded(warmup.id);
  await sleep(Math.max(0, 2 * HEARTBEAT_INTERVAL_MS - (Date.now() - warmStarted)));

  const submittedAt = Date.now();
  const batch = await api<BatchView>("/v1/batches", batchOf(JOBS, WARMUP_JOBS));
  const first = await api<BatchView>(`/v1/batches/${batch.id}`);
  const jobIds = producer.store.list({ batchId: batch.id, limit: 1000 }).rows.map((r) => r.id);
  const jobPredictions = new Map<string, number>();
  for (const id of jobIds) {
    const j = await api<JobView>(`/v1/jobs/${id}`);
    if (j.queue?.estimatedFinishAt) jobPredictions.set(id, Date.parse(j.queue.estimatedFinishAt));
  }
  const samples: { at: number; done: number; predictedFinish: number | null; tokensPerSecond: number | null }[] = [];
  let ended: BatchView | undefined;
  for (;;) {
    const b = await api<BatchView>(`/v1/batches/${batch.id}`);
    if (b.finishedAt) {
      ended = b;
      break;
    }
    samples.push({
      at: Date.now(),
      done: b.progress.done,
      predictedFinish: b.queue?.estimatedFinishAt ? Date.parse(b.queue.estimatedFinishAt) : null,
      tokensPerSecond: b.queue?.tokensPerSecond ?? null,
    });
    await sleep(2_000);
  }
  const actualFinish = Date.parse(ended.finishedAt!);
  const rows = producer.store.list({ batchId: batch.id, limit: 1000 }).rows;
  const generated = rows.reduce((n, r) => n + (r.result?.usage.completionTokens ?? 0), 0);
  const prompt = rows.reduce((n, r) => n + (r.result?.usage.promptTokens ?? 0), 0);

  const predicted = first.queue?.estimatedFinishAt ? Date.parse(first.queue.estimatedFinishAt) : null;
  const jobErrors = rows
    .filter((r) => r.finishedAt && jobPredictions.has(r.id))
    .map((r) => {
      const actual = Date.parse(r.finishedAt!) - submittedAt;
      const error = (jobPredictions.get(r.id) ?? 0) - Date.parse(r.finishedAt!);
      return { error, relative: Math.abs(error) / Math.max(1, actual) };
    });
  const absErrors = jobErrors.map((e) => Math.abs(e.error)).sort((a, b) => a - b);
  const relErrors = jobErrors.map((e) => e.relative).sort((a, b) => a - b);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`;
  const result = {
    machine,
    at: new Date().toISOString(),
    model: MODEL.name,
    jobs: JOBS,
    maxTokens: MAX_TOKENS,
    tokens: { prompt, generated },
    actualSeconds: secs(actualFinish - submittedAt),
    predictedSeconds: predicted === null ? null : secs(predicted - submittedAt),
    errorSeconds: predicted === null ? null : secs(predicted - actualFinish),
    tokensPerSecondAtSubmit: first.queue?.tokensPerSecond ?? null,
    jobs_: {
      predicted: jobErrors.length,
      absErrorSeconds: { p50: secs(percentile(absErrors, 50)), p90: secs(percentile(absErrors, 90)) },
      relativeError: { p50: +percentile(relErrors, 50).toFixed(2), p90: +percentile(relErrors, 90).toFixed(2) },
    },
    samples: samples.map((s) => ({
      elapsedSeconds: secs(s.at - submittedAt),
      done: s.done,
      predictedRemainingSeconds: s.predictedFinish === null ? null : secs(s.predictedFinish - s.at),
      actualRemainingSeconds: secs(actualFinish - s.at),
      tokensPerSecond: s.tokensPerSecond,
    })),
  };

  console.log(`\nETA benchmark: ${JOBS} jobs of ${MAX_TOKENS} tokens on ${MODEL.name}, ${machine}\n`);
  console.log(`batch: predicted at submission ${result.predictedSeconds ?? "-"} s, actual ${result.actualSeconds} s`);
  console.log(
    `       error ${result.errorSeconds ?? "-"} s at ${result.tokensPerSecondAtSubmit ?? "-"} tok/s (worker heartbeats)`,
  );
  console.log(
    `jobs:  ${jobErrors.length} predicted; |error| p50 ${result.jobs_.absErrorSeconds.p50} s, p90 ${result.jobs_.absErrorSeconds.p90} s; relative p50 ${result.jobs_.relativeError.p50}, p90 ${result.jobs_.relativeError.p90}`,
  );
  console.log(`tokens: ${prompt} prompt, ${generated} generated (the estimate assumed ${JOBS * MAX_TOKENS} generated)\n`);
  console.log("| elapsed s | done | predicted remaining s | actual remaining s | tok/s |");
  console.log("| ---: | ---: | ---: | ---: | ---: |");
  for (const s of result.samples)
    console.log(
      `| ${s.elapsedSeconds} | ${s.done} | ${s.predictedRemainingSeconds ?? "-"} | ${s.actualRemainingSeconds} | ${s.tokensPerSecond ?? "-"} |`,
    );

  await worker.close(0);
  await producer.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/eta.json", `${JSON.stringify(result, null, 2)}\n`);
  console.log("\nwritten bench/results/eta.json");
}

await main();
