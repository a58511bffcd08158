/**
 * npm run bench:intake: how fast the producer accepts work, with no worker (intake only).
 * A 10,000-item batch as JSON and as JSONL, and single POST /v1/jobs under concurrent load, against a
 * real nats-server (own store in a temp folder) and a real SQLite file. Prints a table and writes
 * bench/results/intake-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import { loadConfig } from "../../schema/config.ts";
import { startLocalJetStream } from "../nats-server.ts";

const BATCH_ITEMS = Number(process.env.BENCH_BATCH_ITEMS ?? 10_000);
const SINGLE_REQUESTS = Number(process.env.BENCH_SINGLE_REQUESTS ?? 3_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

const doc = (i: number) =>
  `Lease ${i}. The lessee shall pay rent monthly on the first day of each month; late payment accrues interest at 2% per month.`;

interface Row {
  scenario: string;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxEventLoopDelayMs: number;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "docket-bench-"));
  const nats = await startLocalJetStream(join(dir, "nats"));
  const config = loadConfig({
    DOCKET_PORT: "0",
    NATS_URL: nats.url,
    DOCKET_DB: join(dir, "docket.db"),
    DOCKET_LOG_LEVEL: "warn",
    // One client at full speed: the per-client rate limit would measure itself, not intake.
    DOCKET_RATE_LIMIT: "0",
  });
  const producer = await startProducer(config, createLogger("bench", config.DOCKET_LOG_LEVEL));
  const rows: Row[] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });

  const measure = async (scenario: string, jobs: number, run: () => Promise<number[]>) => {
    loop.reset();
    loop.enable();
    const t0 = performance.now();
    const latencies = (await run()).sort((a, b) => a - b);
    const seconds = (performance.now() - t0) / 1000;
    loop.disable();
    const row = {
      scenario,
      jobs,
      seconds: +seconds.toFixed(3),
      jobsPerSecond: Math.round(jobs / seconds),
      p50Ms: +percentile(latencies, 50).toFixed(1),
      p99Ms: +percentile(latencies, 99).toFixed(1),
      maxEventLoopDelayMs: +(loop.max / 1e6).toFixed(1),
    };
    rows.push(row);
    console.error(`${scenario}: ${row.jobsPerSecond} jobs/s`);
  };

  const postBatch = async (body: string, contentType: string, query = "") => {
    const t = performance.now();
    const res = await fetch(`${producer.url}/v1/batches${query}`, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
    const out = (await res.json()) as { total?: number; error?: unknown };
    if (res.status !== 202 || out.total !== BATCH_ITEMS) throw new Error(`batch refused: ${res.status} ${JSON.stringify(out)}`);
    return [performance.now() - t];
  };

  const items = Array.from({ length: BATCH_ITEMS }, (_, i) => ({ text: doc(i), customId: `doc-${i}` }));
  const json = JSON.stringify({ task: "summarize", params: { maxTokens: 256 }, items });
  const jsonl = items.map((i) => JSON.stringify(i)).join("\n");

  for (let r = 0; r < ROUNDS; r++) {
    await measure(`batch ${BATCH_ITEMS} items, JSON`, BATCH_ITEMS, () => postBatch(json, "application/json"));
    await measure(`batch ${BATCH_ITEMS} items, JSONL`, BATCH_ITEMS, () =>
      postBatch(jsonl, "application/x-ndjson", "?task=summarize&params=%7B%22maxTokens%22%3A256%7D"),
    );
  }
  for (let r = 0; r < ROUNDS; r++) {
    await measure(`single POST /v1/jobs ×${SINGLE_REQUESTS}, ${CONCURRENCY} concurrent`, SINGLE_REQUESTS, async () => {
      const latencies: number[] = [];
      let next = 0;
      const client = async () => {
        while (next < SINGLE_REQUESTS) {
          const i = next++;
          const t = performance.now();
          const res = await fetch(`${producer.url}/v1/jobs`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ task: "summarize", input: { text: doc(i) } }),
          });
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`job refused: ${res.status}`);
          latencies.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, client));
      return latencies;
    });
  }

  await producer.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });

  const best = new Map<string, Row>();
  for (const row of rows) if ((best.get(row.scenario)?.jobsPerSecond ?? 0) < row.jobsPerSecond) best.set(row.scenario, row);
  const header = "| scenario | jobs | seconds | jobs/s | p50 ms | p99 ms | max event-loop delay ms |";
  const lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"];
  for (const r of rows)
    lines.push(
      `| ${r.scenario} | ${r.jobs} | ${r.seconds} | ${r.jobsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxEventLoopDelayMs} |`,
    );
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`;
  console.log(`\nintake benchmark (no worker), ${machine}, ${ROUNDS} rounds each\n`);
  console.log(lines.join("\n"));
  mkdirSync("bench/results", { recursive: true });
  const file = join("bench/results", `intake-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ machine, at: new Date().toISOString(), rounds: rows, best: [...best.values()] }, null, 2)}\n`,
  );
  console.log(`\nwritten ${file}`);
}

await main();
