/**
 * `npm run bench:worker`: the worker's throughput on the generated benchmark model, measured side by
 * side in one run: the raw engine alone (node-llama-cpp, no queue) at each batch size, the real worker
 * through JetStream at each fixed batch size (1 = sequential), and the adaptive batcher.
 * Prints a table and ratios; writes bench/results/worker.json and worker.svg.
 *
 * Options (env): BENCH_JOBS (jobs per run, default calibrated to ~BENCH_SECONDS of work for the best
 * raw batch), BENCH_SECONDS (30), BENCH_MAX_TOKENS (48), BENCH_BATCHES ("1,2,4,8,16"), BENCH_THREADS (1).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { getLlama, LlamaChatSession, LlamaLogLevel, resolveChatWrapper } from "node-llama-cpp";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { provision } from "../../runtime/provision.ts";
import { loadConfig } from "../../schema/config.ts";
import { EventMessage } from "../../schema/event.ts";
import type { JobMessage } from "../../schema/job.ts";
import { EVENTS_STREAM, subjects } from "../../schema/subjects.ts";
import { summarize } from "../../worker/tasks/summarize.ts";
import { startWorker } from "../../worker/worker.ts";
import { BENCH_MODEL, ensureDemoModel } from "../model/demo-model.ts";
import { freePort, startNatsServer } from "../nats-server.ts";

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS ?? 30);
const MAX_TOKENS = Number(env.BENCH_MAX_TOKENS ?? 48);
const BATCHES = (env.BENCH_BATCHES ?? "1,2,4,8,16").split(",").map(Number);
const THREADS = Number(env.BENCH_THREADS ?? 1);
const CONTEXT = 1024;
const MAX_BATCH = Math.max(...BATCHES);

const DOCUMENT =
  "This services agreement is made between Northwind Clinic and Contoso Legal. The provider shall deliver monthly reports, " +
  "keep patient records confidential, and notify the client of any breach within 72 hours. Fees are payable within 30 days. " +
  "Either party may terminate with 60 days written notice. Disputes are resolved by arbitration in Zurich.";
const benchJob = (id: string, i: number, submittedAt: string): JobMessage => ({
  v: 1,
  id,
  lane: "batch",
  task: "summarize",
  input: { text: `Document ${i}. ${DOCUMENT}` },
  params: { maxTokens: MAX_TOKENS, seed: i },
  submittedAt,
});
/** The raw engine runs the very prompt the worker's summarize task builds. */
const plan = (i: number) => summarize.build({ job: benchJob("raw", i, ""), document: `Document ${i}. ${DOCUMENT}` });

interface Row {
  run: string;
  batch: string;
  jobs: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  jobsPerSecond: number;
  p50: number;
  p95: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? 0;
};
const row = (run: string, batch: string, jobs: number, tokens: number, ms: number, latencies: number[]): Row => ({
  run,
  batch,
  jobs,
  tokens,
  seconds: Math.round(ms) / 1000,
  tokensPerSecond: Math.round((tokens * 10_000) / ms) / 10,
  jobsPerSecond: Math.round((jobs * 100_000) / ms) / 100,
  p50: Math.round(pct(latencies, 0.5)),
  p95: Math.round(pct(latencies, 0.95)),
});

async function rawEngine(modelPath: string, jobs: number, batch: number): Promise<Row> {
  const llama = await getLlama({ gpu: false, maxThreads: THREADS, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences: batch, contextSize: CONTEXT, threads: THREADS });
  const chatWrapper = resolveChatWrapper(model);
  let next = 0;
  let tokens = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: batch }, async () => {
      const sequence = context.getSequence();
      while (next < jobs) {
        const i = next++;
        const p = plan(i);
        const session = new LlamaChatSession({
          contextSequence: sequence,
          autoDisposeSequence: false,
          chatWrapper,
          systemPrompt: p.systemPrompt,
        });
        const before = sequence.tokenMeter.getState();
        await session.prompt(p.prompt, { maxTokens: MAX_TOKENS, seed: i });
        // Counted as the worker counts completionTokens: the sequence's token meter.
        tokens += sequence.tokenMeter.diff(before).usedOutputTokens;
        session.dispose({ disposeSequence: false });
        await sequence.clearHistory();
        // Latency from the start of the run, as if every job was submitted then (as the worker runs measure it).
        latencies.push(performance.now() - started);
      }
    }),
  );
  const ms = performance.now() - started;
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return row("raw engine", String(batch), jobs, tokens, ms, latencies);
}

async function throughWorker(
  modelPath: string,
  natsUrl: string,
  jobs: number,
  batch: number | "adaptive",
  threads = THREADS,
): Promise<Row> {
  const config = loadConfig({
    NATS_URL: natsUrl,
    DOCKET_MODEL: modelPath,
    DOCKET_GPU: "false",
    DOCKET_THREADS: String(threads),
    DOCKET_MAX_BATCH: String(MAX_BATCH),
    DOCKET_BATCH_SIZE: batch === "adaptive" ? "0" : String(batch),
    DOCKET_CONTEXT_SIZE: String(CONTEXT),
    DOCKET_LOG_LEVEL: env.BENCH_LOG ?? "silent",
    DOCKET_LOG_FORMAT: "json",
  });
  const nc = await connectNats(natsUrl, "bench");
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.purge(EVENTS_STREAM);
  const done = new Map<string, { tokens: number; latency: number }>();
  let finished!: () => void;
  const allDone = new Promise<void>((r) => {
    finished = r;
  });
  const sub = nc.subscribe(`docket.events.*.completed`, {
    callback: (_err, m) => {
      const e = EventMessage.parse(m.json());
      if (!e.result || done.has(e.jobId)) return;
      done.set(e.jobId, { tokens: e.result.usage.completionTokens, latency: Date.now() - Date.parse(e.submittedAt ?? e.at) });
      if (done.size === jobs) finished();
    },
  });
  const worker = await startWorker(config, createLogger("bench", config.DOCKET_LOG_LEVEL));
  const started = performance.now();
  const submittedAt = new Date().toISOString();
  const run = `r${Date.now()}`;
  await Promise.all(
    Array.from({ length: jobs }, (_, i) => {
      const job = benchJob(`${run}_${i}`, i, submittedAt);
      return js.publish(subjects.job(job.lane, job.task), JSON.stringify(job), { msgID: job.id });
    }),
  );
  await allDone;
  const ms = performance.now() - started;
  const status = worker.status();
  sub.unsubscribe();
  await worker.close(0);
  await nc.close();
  const values = [...done.values()];
  const r = row(
    threads !== THREADS
      ? `worker, ${threads} threads`
      : batch === 1
        ? "worker, sequential"
        : batch === "adaptive"
          ? "worker, adaptive"
          : "worker, fixed",
    batch === "adaptive" ? `adaptive (ended at ${status.batchSize})` : String(batch),
    jobs,
    values.reduce((a, v) => a + v.tokens, 0),
    ms,
    values.map((v) => v.latency),
  );
  if (batch === "adaptive")
    console.log(`  adaptive batcher measured (tok/s by batch size): ${JSON.stringify(status.batcher?.measured)}`);
  return r;
}

function svgChart(rows: Row[]): string {
  const w = 720;
  const barH = 22;
  const h = 40 + rows.length * (barH + 8);
  const max = Math.max(...rows.map((r) => r.tokensPerSecond));
  const bars = rows
    .map((r, i) => {
      const y = 30 + i * (barH + 8);
      const len = Math.max(1, ((w - 330) * r.tokensPerSecond) / max);
      const color = r.run.includes("adaptive") ? "#d9480f" : r.run.startsWith("raw") ? "#868e96" : "#1c7ed6";
      return `<text x="8" y="${y + 15}" font-size="12">${r.run} · ${r.batch}</text><rect x="240" y="${y}" width="${len}" height="${barH}" fill="${color}"/><text x="${245 + len}" y="${y + 15}" font-size="12">${r.tokensPerSecond} tok/s</text>`;
    })
    .join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><text x="8" y="18" font-size="14" font-weight="bold">docket worker throughput (tokens/s, generated bench model, CPU, ${THREADS} thread)</text>\n${bars}\n</svg>\n`;
}

async function main() {
  const modelPath = await ensureDemoModel(BENCH_MODEL);
  console.log(`bench model: ${modelPath}`);

  const calib = await rawEngine(modelPath, MAX_BATCH * 2, MAX_BATCH);
  const jobs = Number(env.BENCH_JOBS ?? Math.max(MAX_BATCH * 4, Math.round((calib.jobsPerSecond * SECONDS) / 4) * 4));
  console.log(`${jobs} jobs per run, maxTokens ${MAX_TOKENS}, context ${CONTEXT}, batches ${BATCHES.join(",")}`);

  const rows: Row[] = [];
  const print = (r: Row) => {
    rows.push(r);
    console.log(
      `${r.run.padEnd(20)} ${r.batch.padEnd(22)} ${String(r.tokensPerSecond).padStart(8)} tok/s ${String(r.jobsPerSecond).padStart(7)} jobs/s  p50 ${r.p50} ms  p95 ${r.p95} ms`,
    );
  };
  for (const b of BATCHES) print(await rawEngine(modelPath, jobs, b));

  const dir = await mkdtemp(join(tmpdir(), "docket-bench-"));
  const port = await freePort();
  const nats = await startNatsServer({ args: ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir] });
  const url = `nats://127.0.0.1:${port}`;
  const admin = await connectNats(url, "bench-admin");
  await provision(admin);
  await admin.close();
  try {
    for (const b of BATCHES) print(await throughWorker(modelPath, url, jobs, b));
    print(await throughWorker(modelPath, url, jobs, "adaptive"));
    // Threads: in the worker, llama.cpp's math threads compete with Node's event loop for the cores.
    print(await throughWorker(modelPath, url, jobs, "adaptive", THREADS + 1));
  } finally {
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }

  const best = (key: "tokensPerSecond" | "jobsPerSecond", pred: (r: Row) => boolean) =>
    Math.max(...rows.filter(pred).map((r) => r[key]));
  const ratio = (key: "tokensPerSecond" | "jobsPerSecond", of: (r: Row) => boolean, over: (r: Row) => boolean) =>
    Math.round((best(key, of) / best(key, over)) * 100) / 100;
  const adaptive = (r: Row) => r.run === "worker, adaptive";
  const sequential = (r: Row) => r.run === "worker, sequential";
  const fixed = (r: Row) => r.run.startsWith("worker, fixed") || r.run === "worker, sequential";
  const raw = (r: Row) => r.run === "raw engine";
  const moreThreads = (r: Row) => r.run.endsWith("threads");
  const ratios = {
    adaptiveOverSequential: ratio("tokensPerSecond", adaptive, sequential),
    adaptiveOverBestFixed: ratio("tokensPerSecond", adaptive, fixed),
    adaptiveOverRawBest: ratio("tokensPerSecond", adaptive, raw),
    adaptiveOverBestFixedJobs: ratio("jobsPerSecond", adaptive, fixed),
    adaptiveOverRawBestJobs: ratio("jobsPerSecond", adaptive, raw),
    moreThreadsOverDefault: ratio("tokensPerSecond", moreThreads, adaptive),
  };
  console.log(
    `tokens/s: adaptive/sequential ${ratios.adaptiveOverSequential}×  adaptive/best fixed ${ratios.adaptiveOverBestFixed}×  adaptive/raw best ${ratios.adaptiveOverRawBest}×`,
  );
  console.log(
    `jobs/s:   adaptive/best fixed ${ratios.adaptiveOverBestFixedJobs}×  adaptive/raw best ${ratios.adaptiveOverRawBestJobs}×   ${THREADS + 1} threads/${THREADS} ${ratios.moreThreadsOverDefault}×`,
  );
  const out = join(process.cwd(), "bench", "results");
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, "worker.json"),
    `${JSON.stringify({ at: new Date().toISOString(), jobs, maxTokens: MAX_TOKENS, threads: THREADS, rows, ratios }, null, 2)}\n`,
  );
  await writeFile(join(out, "worker.svg"), svgChart(rows));
  console.log(`wrote ${join(out, "worker.json")} and worker.svg`);
}

await main();
process.exit(0);
