/**
 * `npm run bench:worker`: does docket deliver what its engine can? Measured side by side in one run, for
 * each generated model (BENCH_MODELS, default "batch,bench"):
 *
 * - raw engine: node-llama-cpp alone (no queue), the very prompts the summarize task builds, the same chat
 *   template and thread count the worker uses, at each batch size (sequences decoded together);
 * - worker: the real worker in this process, jobs through JetStream, at each fixed batch size and adaptive
 *   (time to converge, changes after converging);
 * - stack: `npm start` as a user runs it (producer + nats-server + worker, default settings), jobs posted
 *   over HTTP and read back over HTTP: generated tokens/s of a backlog, and an interactive job's time from
 *   POST to result on an idle worker and while the backlog saturates it; then the same backlog on a stack
 *   whose context is sized to these jobs (9 sequences × 1024 tokens): what the default allocation costs in
 *   tokens/s, start-up and memory.
 *
 * Every job generates exactly BENCH_MAX_TOKENS (params.ignoreEos), so batch sizes compare on equal work.
 * Prints a table and ratios per model; writes bench/results/worker.json and worker.svg.
 *
 * Options (env): BENCH_MODELS, BENCH_MODE (all | raw | worker | stack), BENCH_SECONDS (15: work per run at
 * batch 1, sets the job count, at least 48), BENCH_MAX_TOKENS (64), BENCH_BATCHES ("1,2,4,8,16"),
 * BENCH_INTERACTIVE (20), DOCKET_GPU (auto: CUDA, Vulkan or Metal when present), DOCKET_THREADS (the
 * worker's default: all cores but one).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { getLlama, LlamaChatSession, LlamaLogLevel, type LlamaModel, resolveChatWrapper } from "node-llama-cpp";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { provision } from "../../runtime/provision.ts";
import type { JobView } from "../../schema/api.ts";
import { loadConfig } from "../../schema/config.ts";
import { EventMessage } from "../../schema/event.ts";
import type { JobMessage } from "../../schema/job.ts";
import { EVENTS_STREAM, subjects } from "../../schema/subjects.ts";
import { lockstep, urgentFirst } from "../../worker/batch-priority.ts";
import { defaultThreads, endOfGenerationBias } from "../../worker/engine.ts";
import { summarize } from "../../worker/tasks/summarize.ts";
import { startWorker } from "../../worker/worker.ts";
import { BATCH_MODEL, BENCH_MODEL, type DemoModelOptions, ensureDemoModel } from "../model/demo-model.ts";
import { freePort, startLocalJetStream } from "../nats-server.ts";

const env = process.env;
const MODELS: Record<string, DemoModelOptions> = { batch: BATCH_MODEL, bench: BENCH_MODEL };
const MODEL_NAMES = (env.BENCH_MODELS ?? "batch,bench").split(",").filter((m) => m in MODELS);
const MODE = env.BENCH_MODE ?? "all";
const SECONDS = Number(env.BENCH_SECONDS ?? 15);
const MAX_TOKENS = Number(env.BENCH_MAX_TOKENS ?? 64);
const BATCHES = (env.BENCH_BATCHES ?? "1,2,4,8,16").split(",").map(Number);
const INTERACTIVE = Number(env.BENCH_INTERACTIVE ?? 20);
const GPU = loadConfig({ DOCKET_GPU: env.DOCKET_GPU }).DOCKET_GPU;
const THREADS = Number(env.DOCKET_THREADS || defaultThreads());
/** Per-sequence context of the raw and in-process runs: the prompt (~290 tokens) and output fit. */
const CONTEXT = 1024;
const MAX_BATCH = Math.max(...BATCHES);
const root = resolve(import.meta.dirname, "../..");

const DOCUMENT =
  "This services agreement is made between Northwind Clinic and Contoso Legal. The provider shall deliver monthly reports, " +
  "keep patient records confidential, and notify the client of any breach within 72 hours. Fees are payable within 30 days. " +
  "Either party may terminate with 60 days written notice. Disputes are resolved by arbitration in Zurich.";
const text = (i: number) => `Document ${i}. ${DOCUMENT}`;
const params = (i: number, maxTokens = MAX_TOKENS) => ({ maxTokens, seed: i, ignoreEos: true });
const benchJob = (id: string, i: number, submittedAt: string): JobMessage => ({
  v: 1,
  id,
  lane: "batch",
  task: "summarize",
  input: { text: text(i) },
  params: params(i),
  submittedAt,
});
/** The raw engine runs the very prompt the worker's summarize task builds. */
const plan = (i: number) => summarize.build({ job: benchJob("raw", i, ""), document: text(i) });

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
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const row = (run: string, batch: string, jobs: number, tokens: number, ms: number, latencies: number[]): Row => ({
  run,
  batch,
  jobs,
  tokens,
  seconds: round(ms / 1000, 1),
  tokensPerSecond: round((tokens * 1000) / ms, 1),
  jobsPerSecond: round((jobs * 1000) / ms),
  p50: Math.round(pct(latencies, 0.5)),
  p95: Math.round(pct(latencies, 0.95)),
});

/**
 * node-llama-cpp alone on the task's prompts. `lockstep`: with docket's decode-step policy (worker/batch-priority.ts),
 * which keeps the generating sequences in one step; without, node-llama-cpp's own batching, where one sequence trails.
 */
async function rawEngine(model: LlamaModel, jobs: number, batch: number, threads = THREADS, lockstepOn = false): Promise<Row> {
  const context = await model.createContext({
    sequences: batch,
    contextSize: CONTEXT,
    threads,
    ...(lockstepOn ? { batching: { itemPrioritizationStrategy: lockstep(urgentFirst()) } } : {}),
  });
  const chatWrapper = resolveChatWrapper(model);
  const tokenBias = endOfGenerationBias(model);
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
        await session.prompt(p.prompt, { maxTokens: MAX_TOKENS, seed: i, tokenBias });
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
  const name = `raw engine${lockstepOn ? ", lockstep" : ""}${threads === THREADS ? "" : `, ${threads} threads`}`;
  return row(name, String(batch), jobs, tokens, ms, latencies);
}

interface Convergence {
  /** Seconds from the backlog's start until the batch size was good (≥ 0.9× the best fixed) for good; null: never. */
  seconds: number | null;
  /** Batch-size changes after that point. */
  changesAfter: number;
  path: string;
}

/** Which batch sizes run at ≥ 0.9× the best fixed size's throughput (sizes between two measured ones take the lower). */
function convergence(trace: { t: number; size: number }[], fixed: Map<number, number>): Convergence {
  const path = trace.filter((p, i) => i === 0 || p.size !== trace[i - 1]?.size).map((p) => `${p.size}@${round(p.t / 1000, 1)}s`);
  if (fixed.size === 0) return { seconds: null, changesAfter: 0, path: path.join(" → ") };
  const best = Math.max(...fixed.values());
  const sizes = [...fixed.keys()].sort((a, b) => a - b);
  const tpsOf = (s: number) => {
    const lower = sizes.filter((k) => k <= s).pop();
    const upper = sizes.find((k) => k >= s);
    return Math.min(fixed.get(lower ?? s) ?? 0, fixed.get(upper ?? s) ?? 0);
  };
  const good = (s: number) => tpsOf(s) >= 0.9 * best;
  let from: number | null = null;
  let changes = 0;
  for (let i = 0; i < trace.length; i++) {
    const point = trace[i] as { t: number; size: number };
    if (!good(point.size)) {
      from = null;
      changes = 0;
    } else if (from === null) from = point.t;
    else if (i > 0 && point.size !== trace[i - 1]?.size) changes++;
  }
  return { seconds: from === null ? null : round(from / 1000, 1), changesAfter: changes, path: path.join(" → ") };
}

async function throughWorker(
  modelPath: string,
  natsUrl: string,
  jobs: number,
  batch: number | "adaptive",
): Promise<{ row: Row; trace: { t: number; size: number }[] }> {
  const config = loadConfig({
    NATS_URL: natsUrl,
    DOCKET_MODEL: modelPath,
    DOCKET_GPU: GPU,
    DOCKET_THREADS: String(THREADS),
    DOCKET_MAX_BATCH: String(MAX_BATCH),
    DOCKET_BATCH_SIZE: batch === "adaptive" ? "0" : String(batch),
    DOCKET_CONTEXT_SIZE: String(CONTEXT),
    DOCKET_LOG_LEVEL: env.BENCH_LOG ?? "silent",
    DOCKET_WORKER_PORT: "0",
    // The decode-step and prefix-reuse settings, to compare them in one command.
    ...(env.DOCKET_STEP_TOKENS ? { DOCKET_STEP_TOKENS: env.DOCKET_STEP_TOKENS } : {}),
    ...(env.DOCKET_LOCKSTEP_MS ? { DOCKET_LOCKSTEP_MS: env.DOCKET_LOCKSTEP_MS } : {}),
    ...(env.DOCKET_PREFIX_REUSE ? { DOCKET_PREFIX_REUSE: env.DOCKET_PREFIX_REUSE } : {}),
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
  const sub = nc.subscribe("docket.events.*.completed", {
    callback: (_err, m) => {
      const e = EventMessage.parse(m.json());
      if (!e.result || done.has(e.jobId)) return;
      done.set(e.jobId, { tokens: e.result.usage.completionTokens, latency: Date.now() - Date.parse(e.submittedAt ?? e.at) });
      if (done.size === jobs) finished();
    },
  });
  const worker = await startWorker(config, createLogger("bench", config.DOCKET_LOG_LEVEL));
  const started = performance.now();
  const trace: { t: number; size: number }[] = [];
  const sampler = setInterval(() => trace.push({ t: performance.now() - started, size: worker.status().batchSize }), 250);
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
  clearInterval(sampler);
  const status = worker.status();
  sub.unsubscribe();
  await worker.close(0);
  await nc.close();
  const values = [...done.values()];
  const name = batch === 1 ? "worker, sequential" : batch === "adaptive" ? "worker, adaptive" : "worker, fixed";
  const label = batch === "adaptive" ? `adaptive (ended at ${status.batchSize})` : String(batch);
  const tokens = values.reduce((a, v) => a + v.tokens, 0);
  return {
    row: row(
      name,
      label,
      jobs,
      tokens,
      ms,
      values.map((v) => v.latency),
    ),
    trace,
  };
}

/** `npm start` as a user runs it, in a temporary folder, on free ports; resolves once the API answers. */
async function startStack(
  modelPath: string,
  extraEnv: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess; logs: Record<string, unknown>[]; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "docket-bench-stack-"));
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(root, "tools/start.ts")], {
    cwd: dir,
    env: {
      ...env,
      NATS_URL: `nats://127.0.0.1:${await freePort()}`,
      DOCKET_PORT: String(await freePort()),
      DOCKET_WORKER_PORT: "0",
      DOCKET_MODEL: modelPath,
      DOCKET_LOG_FORMAT: "json",
      // Not the worker's settings: one client polling at full speed must not meet the per-key rate limit,
      // and the stack stops without waiting out the drain of the jobs left.
      DOCKET_RATE_LIMIT: "0",
      DOCKET_GRACE_SECONDS: "0",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let buffer = "";
  const url = await new Promise<string>((resolveUrl, reject) => {
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const up = /docket is up: API at (\S+)/.exec(line);
        if (up?.[1]) resolveUrl(up[1]);
        if (line.startsWith("{")) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}):\n${buffer}`)));
  });
  return {
    url,
    child,
    logs,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function post(url: string, body: unknown): Promise<JobView> {
  const res = await fetch(`${url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`POST /v1/jobs: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobView;
}

/** An interactive job's time, POST to result, and the worker's share of it: waiting for a slot, then running. */
interface Interactive {
  e2e: number;
  queueMs: number;
  runMs: number;
}

/** One interactive job at a time, POST to result (polled every 20 ms), on whatever the worker is doing. */
async function interactiveLatencies(url: string, count: number, from: number): Promise<Interactive[]> {
  const out: Interactive[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const { id } = await post(url, {
      task: "summarize",
      lane: "interactive",
      input: { text: text(from + i) },
      params: params(from + i, 16),
    });
    for (;;) {
      const view = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as JobView;
      if (view.state === "succeeded") {
        const timings = view.result?.timings;
        out.push({ e2e: performance.now() - t0, queueMs: timings?.queueMs ?? 0, runMs: timings?.runMs ?? 0 });
        break;
      }
      if (view.state === "failed" || view.state === "cancelled") throw new Error(`interactive job ${id} ${view.state}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return out;
}

/** p50/p95 of the interactive jobs' end-to-end time, and of its parts on the worker (queue wait, run). */
function interactiveSummary(jobs: Interactive[]) {
  const of = (f: (j: Interactive) => number) => ({
    p50: Math.round(pct(jobs.map(f), 0.5)),
    p95: Math.round(pct(jobs.map(f), 0.95)),
  });
  return { e2e: of((j) => j.e2e), queue: of((j) => j.queueMs), run: of((j) => j.runMs) };
}

const endToEnd = (jobs: Interactive[]) => jobs.map((j) => j.e2e);

/** Posts a backlog of `jobs` summarize jobs at once; resolves when all have succeeded (listed over HTTP). */
async function backlog(url: string, jobs: number, from: number): Promise<{ started: number; views: () => Promise<JobView[]> }> {
  const createdAfter = new Date(Date.now() - 1).toISOString();
  const started = Date.now();
  await Promise.all(
    Array.from({ length: jobs }, (_, i) =>
      post(url, { task: "summarize", input: { text: text(from + i) }, params: params(from + i) }),
    ),
  );
  return {
    started,
    async views() {
      for (;;) {
        const res = await fetch(`${url}/v1/jobs?state=succeeded&limit=1000&createdAfter=${encodeURIComponent(createdAfter)}`);
        const { data } = (await res.json()) as { data: JobView[] };
        const mine = data.filter((v) => v.lane === "default");
        if (mine.length >= jobs) return mine;
        await new Promise((r) => setTimeout(r, 500));
      }
    },
  };
}

interface StackResult {
  row: Row;
  convergence: Convergence;
  interactive: {
    idleP95: number;
    loadedP95: number;
    ratio: number;
    idleP50: number;
    loadedP50: number;
    /** Where the time went on the worker: queue wait and run, p50/p95, idle and under load. */
    idle: ReturnType<typeof interactiveSummary>;
    loaded: ReturnType<typeof interactiveSummary>;
    /** The saturating backlog's tokens/s, with the interactive jobs run beside it. */
    besideTokensPerSecond: number;
  };
  memory: Record<string, unknown>;
}

/** The stack's context, right-sized to these jobs (against the default 33 × up to 8192): what the allocation costs. */
const SMALL_CONTEXT = { DOCKET_MAX_BATCH: "8", DOCKET_CONTEXT_SIZE: "1024" };

/** The stack with SMALL_CONTEXT, the backlog only: tokens/s, start-up and memory beside the defaults'. */
async function throughSmallStack(modelPath: string, jobs: number): Promise<{ row: Row; memory: Record<string, unknown> }> {
  const stack = await startStack(modelPath, SMALL_CONTEXT);
  try {
    await (await backlog(stack.url, 1, 9_000)).views(); // pages the weights in, no person about (as above)
    const run = await backlog(stack.url, jobs, 0);
    const views = await run.views();
    const end = Math.max(...views.map((v) => Date.parse(v.finishedAt ?? "")));
    const tokens = views.reduce((a, v) => a + (v.result?.usage.completionTokens ?? 0), 0);
    const latencies = views.map((v) => Date.parse(v.finishedAt ?? "") - run.started);
    const plan = stack.logs.find((l) => typeof l.contextSize === "number" && typeof l.totalBytes === "number");
    const model = stack.logs.find((l) => l.msg === "model loaded");
    return {
      row: row("stack, 9 × 1024 context", "adaptive", jobs, tokens, end - run.started, latencies),
      memory: { sequences: plan?.sequences, contextSize: plan?.contextSize, planBytes: plan?.totalBytes, loadMs: model?.loadMs },
    };
  } finally {
    await stack.stop();
  }
}

async function throughStack(modelPath: string, jobs: number, fixed: Map<number, number>): Promise<StackResult> {
  const stack = await startStack(modelPath);
  try {
    // The model's first pass pages its weights in; a batch-lane job, so that no person's job was about when the
    // backlog starts (the worker keeps its steps short for a minute after one: DOCKET_STEP_MS).
    await (await backlog(stack.url, 1, 9_000)).views();

    const run = await backlog(stack.url, jobs, 0);
    const views = await run.views();
    const end = Math.max(...views.map((v) => Date.parse(v.finishedAt ?? "")));
    const tokens = views.reduce((a, v) => a + (v.result?.usage.completionTokens ?? 0), 0);
    const latencies = views.map((v) => Date.parse(v.finishedAt ?? "") - run.started);
    const r = row("stack (npm start), HTTP", "adaptive, defaults", jobs, tokens, end - run.started, latencies);
    // The batcher's decisions, from the worker's log, as a trace from the backlog's start.
    const decisions = stack.logs
      .filter((l) => l.msg === "batch size changed" && Number(l.time) >= run.started && Number(l.time) <= end)
      .map((l) => ({ t: Number(l.time) - run.started, size: Number(l.limit) }));
    const before = stack.logs.filter((l) => l.msg === "batch size changed" && Number(l.time) < run.started).pop();
    const startSize = before ? Number(before.limit) : 1;
    const trace = [{ t: 0, size: startSize }, ...decisions, { t: end - run.started, size: decisions.at(-1)?.size ?? startSize }];

    // Interactive jobs one at a time on the idle worker, then while a backlog saturates it (a head start fills every
    // batch slot).
    // Documents of their own in each run: a document the worker holds would skip its prompt (prefix reuse).
    const idle = await interactiveLatencies(stack.url, INTERACTIVE, 1000);
    const beside = await backlog(stack.url, jobs, 5000);
    await new Promise((r) => setTimeout(r, 3_000));
    const loaded = await interactiveLatencies(stack.url, INTERACTIVE, 2000);
    // The backlog's own tokens/s, the interactive jobs' time included: what people's jobs cost the batch lanes.
    const besideViews = await beside.views();
    const besideEnd = Math.max(...besideViews.map((v) => Date.parse(v.finishedAt ?? "")));
    const besideTokens = besideViews.reduce((a, v) => a + (v.result?.usage.completionTokens ?? 0), 0);
    const idleSummary = interactiveSummary(idle);
    const loadedSummary = interactiveSummary(loaded);
    const plan = stack.logs.find((l) => typeof l.contextSize === "number" && typeof l.totalBytes === "number");
    const model = stack.logs.find((l) => l.msg === "model loaded");
    return {
      row: r,
      convergence: convergence(trace, fixed),
      interactive: {
        idleP50: idleSummary.e2e.p50,
        idleP95: idleSummary.e2e.p95,
        loadedP50: loadedSummary.e2e.p50,
        loadedP95: loadedSummary.e2e.p95,
        // From the unrounded times.
        ratio: round(pct(endToEnd(loaded), 0.95) / pct(endToEnd(idle), 0.95)),
        idle: idleSummary,
        loaded: loadedSummary,
        besideTokensPerSecond: round((besideTokens * 1000) / (besideEnd - beside.started), 1),
      },
      memory: {
        sequences: plan?.sequences,
        contextSize: plan?.contextSize,
        planBytes: plan?.totalBytes,
        threads: model?.threads,
        loadMs: model?.loadMs,
      },
    };
  } finally {
    await stack.stop();
  }
}

function svgChart(sections: { model: string; rows: Row[] }[]): string {
  const w = 760;
  const barH = 18;
  let y = 28;
  const parts: string[] = [];
  const max = Math.max(...sections.flatMap((s) => s.rows.map((r) => r.tokensPerSecond)));
  for (const { model, rows } of sections) {
    parts.push(`<text x="8" y="${y + 12}" font-size="13" font-weight="bold">${model}</text>`);
    y += 20;
    for (const r of rows) {
      const len = Math.max(1, ((w - 340) * r.tokensPerSecond) / max);
      const color = r.run.startsWith("stack")
        ? "#2b8a3e"
        : r.run.includes("adaptive")
          ? "#d9480f"
          : r.run.startsWith("raw")
            ? "#868e96"
            : "#1c7ed6";
      parts.push(
        `<text x="8" y="${y + 13}" font-size="11">${r.run} · ${r.batch}</text><rect x="260" y="${y}" width="${len}" height="${barH}" fill="${color}"/><text x="${265 + len}" y="${y + 13}" font-size="11">${r.tokensPerSecond} tok/s</text>`,
      );
      y += barH + 6;
    }
    y += 8;
  }
  const title = `docket worker throughput: generated tokens/s, ${GPU === "false" ? "CPU" : `gpu ${GPU}`}, ${THREADS} math thread(s), ${MAX_TOKENS} tokens per job`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${y + 10}" font-family="sans-serif"><text x="8" y="18" font-size="14" font-weight="bold">${title}</text>\n${parts.join("\n")}\n</svg>\n`;
}

const print = (r: Row) =>
  console.log(
    `  ${r.run.padEnd(26)} ${r.batch.padEnd(22)} ${String(r.tokensPerSecond).padStart(8)} tok/s ${String(r.jobsPerSecond).padStart(6)} jobs/s  p50 ${r.p50} ms  p95 ${r.p95} ms`,
  );

async function benchModel(name: string, natsUrl: string | undefined) {
  const options = MODELS[name] as DemoModelOptions;
  const modelPath = await ensureDemoModel(options);
  const llama = await getLlama({ gpu: GPU === "false" ? false : GPU, maxThreads: THREADS, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const shape = `${options.embedding} embedding, ${options.layers} layers, FFN ${options.feedForward}, ${options.quantization}`;
  console.log(`\n${name} model (${shape}): ${modelPath}; gpu ${llama.gpu}, ${THREADS} math thread(s)`);
  await rawEngine(model, 4, 1); // warm-up: weights paged in
  const calib = await rawEngine(model, 8, 1);
  const jobs = Math.max(48, Math.round((calib.jobsPerSecond * SECONDS) / 4) * 4);
  console.log(
    `  ${jobs} jobs per run, ${MAX_TOKENS} tokens each (ignoreEos), prompt ~${model.tokenize(plan(0).prompt).length + 40} tokens`,
  );
  const rows: Row[] = [];
  const add = (r: Row) => {
    rows.push(r);
    print(r);
  };
  const raw = new Map<number, number>();
  const rawLockstep = new Map<number, number>();
  if (MODE === "all" || MODE === "raw") {
    for (const b of BATCHES) {
      const r = await rawEngine(model, jobs, b);
      raw.set(b, r.tokensPerSecond);
      add(r);
      if (b === 1) continue;
      const l = await rawEngine(model, jobs, b, THREADS, true);
      rawLockstep.set(b, l.tokensPerSecond);
      add(l);
    }
    if (llama.gpu === false && THREADS > 1) add(await rawEngine(model, jobs, 4, 1));
    if (llama.gpu === false && THREADS < availableParallelism()) add(await rawEngine(model, jobs, 4, THREADS + 1));
  }
  await model.dispose();
  await llama.dispose();

  const fixed = new Map<number, number>();
  let adaptive: Convergence | undefined;
  if ((MODE === "all" || MODE === "worker") && natsUrl) {
    for (const b of BATCHES) {
      const { row: r } = await throughWorker(modelPath, natsUrl, jobs, b);
      fixed.set(b, r.tokensPerSecond);
      add(r);
    }
    const { row: r, trace } = await throughWorker(modelPath, natsUrl, jobs, "adaptive");
    add(r);
    adaptive = convergence(trace, fixed);
    console.log(
      `  adaptive: good size (≥ 0.9× best fixed) from ${adaptive.seconds ?? "never"} s, ${adaptive.changesAfter} changes after; ${adaptive.path}`,
    );
  }
  let stack: StackResult | undefined;
  let memory: { default: Record<string, unknown>; small: Record<string, unknown>; smallOverDefault: number } | undefined;
  if (MODE === "all" || MODE === "stack") {
    const rawBySize = new Map([...raw].map(([b, tps]) => [b, Math.max(tps, rawLockstep.get(b) ?? 0)]));
    stack = await throughStack(modelPath, jobs, fixed.size ? fixed : rawBySize);
    add(stack.row);
    console.log(
      `  stack: batcher good from ${stack.convergence.seconds ?? "never"} s, ${stack.convergence.changesAfter} changes after; ${stack.convergence.path}`,
    );
    console.log(
      `  stack: interactive POST→result p50/p95 idle ${stack.interactive.idleP50}/${stack.interactive.idleP95} ms, under a saturating backlog ${stack.interactive.loadedP50}/${stack.interactive.loadedP95} ms: p95 ${stack.interactive.ratio}×`,
    );
    const part = (p: { p50: number; p95: number }) => `${p.p50}/${p.p95}`;
    for (const [when, at] of [
      ["idle", stack.interactive.idle],
      ["under load", stack.interactive.loaded],
    ] as const) {
      console.log(`  stack: interactive ${when}: queue wait ${part(at.queue)} ms, run ${part(at.run)} ms (p50/p95)`);
    }
    console.log(
      `  stack: the backlog beside the interactive jobs: ${stack.interactive.besideTokensPerSecond} tok/s (alone: ${stack.row.tokensPerSecond})`,
    );
    console.log(`  stack: worker plan ${JSON.stringify(stack.memory)}`);
    const small = await throughSmallStack(modelPath, jobs);
    add(small.row);
    memory = {
      default: stack.memory,
      small: small.memory,
      smallOverDefault: round(small.row.tokensPerSecond / stack.row.tokensPerSecond),
    };
    console.log(
      `  memory: the default context ${JSON.stringify(stack.memory)} against 9 × 1024 ${JSON.stringify(small.memory)}: tok/s ${memory.smallOverDefault}× the default's`,
    );
  }

  const bestOf = (pred: (r: Row) => boolean) => Math.max(0, ...rows.filter(pred).map((r) => r.tokensPerSecond));
  const rawBest = bestOf((r) => r.run === "raw engine" || r.run === "raw engine, lockstep");
  const ratio = (a: number, b: number) => (a > 0 && b > 0 ? round(a / b) : null);
  const ratios = {
    rawBatch4OverBatch1: ratio(raw.get(4) ?? 0, raw.get(1) ?? 0),
    rawLockstepBatch4OverBatch1: ratio(rawLockstep.get(4) ?? 0, raw.get(1) ?? 0),
    workerBestFixedOverRawBest: ratio(
      bestOf((r) => r.run === "worker, fixed" || r.run === "worker, sequential"),
      rawBest,
    ),
    adaptiveOverRawBest: ratio(
      bestOf((r) => r.run === "worker, adaptive"),
      rawBest,
    ),
    adaptiveOverBestFixed: ratio(
      bestOf((r) => r.run === "worker, adaptive"),
      Math.max(0, ...fixed.values()),
    ),
    stackOverRawBest: ratio(stack?.row.tokensPerSecond ?? 0, rawBest),
    interactiveLoadedOverIdleP95: stack?.interactive.ratio ?? null,
  };
  console.log(`  ratios: ${JSON.stringify(ratios)}`);
  return { model: name, shape, modelPath, jobs, rows, ratios, adaptive, stack, memory };
}

async function main() {
  let nats: Awaited<ReturnType<typeof startLocalJetStream>> | undefined;
  let dir: string | undefined;
  let url: string | undefined;
  if (MODE === "all" || MODE === "worker") {
    dir = await mkdtemp(join(tmpdir(), "docket-bench-"));
    nats = await startLocalJetStream(dir);
    url = nats.url;
    const admin = await connectNats(url, "bench-admin");
    await provision(admin);
    await admin.close();
  }
  const results = [];
  try {
    for (const name of MODEL_NAMES) results.push(await benchModel(name, url));
  } finally {
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
  const out = join(root, "bench", "results");
  await mkdir(out, { recursive: true });
  const at = new Date().toISOString();
  await writeFile(
    join(out, "worker.json"),
    `${JSON.stringify({ at, gpu: GPU, threads: THREADS, maxTokens: MAX_TOKENS, mode: MODE, models: results }, null, 2)}\n`,
  );
  await writeFile(
    join(out, "worker.svg"),
    svgChart(results.map((r) => ({ model: `${r.model} model (${r.shape})`, rows: r.rows }))),
  );
  console.log(`\nwrote ${join(out, "worker.json")} and worker.svg`);
}

await main();
process.exit(0);
