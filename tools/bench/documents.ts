/**
 * `npm run bench:documents`: one document, many tasks (issue 10). A ~3,000-token contract gets 12 tasks
 * (a summary, questions, a classification, an extraction): the classification first (triage), then the 11
 * others at once, through JetStream, run by real
 * worker processes with default settings, on one worker and on two, with document-prefix reuse off
 * (DOCKET_PREFIX_REUSE=false), on with each worker for itself (DOCKET_PREFIX_SHARE=false, two workers
 * only), on with checkpoints shared through NATS, and on, shared, with the tasks routed to the worker that holds
 * the document (the producer's rule, DOCKET_PREFIX_ROUTING; two workers only). Prints wall time until the 12th result,
 * prompt tokens evaluated and reused, and the ratios, per generated model (BENCH_MODELS, default
 * "bench,batch"). Writes bench/results/documents.json.
 *
 * Answers have a fixed length (params.ignoreEos) except the grammar-bound classify and extract, so the runs
 * compare on equal work. Options (env): BENCH_MODELS, BENCH_MAX_TOKENS (32), BENCH_WORKERS ("1,2"), BENCH_REUSE
 * ("off,local,shared,routed"), BENCH_FOLLOW_UPS (6: questions asked one at a time after the 12, timed apart),
 * BENCH_DEBUG (prints each task's subject: routed or not),
 * DOCKET_GPU, DOCKET_THREADS.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { textSha256 } from "../../producer/job-message.ts";
import { Shares } from "../../producer/shares.ts";
import { WorkerRegistry } from "../../producer/worker-registry.ts";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { provision } from "../../runtime/provision.ts";
import { EventMessage } from "../../schema/event.ts";
import type { JobMessage } from "../../schema/job.ts";
import { BATCH_MODEL, BENCH_MODEL, type DemoModelOptions, ensureDemoModel } from "../model/demo-model.ts";
import { startLocalJetStream } from "../nats-server.ts";

const env = process.env;
const MODELS: Record<string, DemoModelOptions> = { bench: BENCH_MODEL, batch: BATCH_MODEL };
const MODEL_NAMES = (env.BENCH_MODELS ?? "bench,batch").split(",").filter((m) => m in MODELS);
const MAX_TOKENS = Number(env.BENCH_MAX_TOKENS ?? 32);
const WORKERS = (env.BENCH_WORKERS ?? "1,2").split(",").map(Number);
const FOLLOW_UPS = Number(env.BENCH_FOLLOW_UPS ?? 6);
const root = resolve(import.meta.dirname, "../..");

const CLAUSES = [
  "The Lessor leases to the Lessee the premises at 14 Harbour Street, Unit 3, for use as a medical practice.",
  "The term begins on 1 March 2026 and ends on 28 February 2031 unless terminated earlier under this agreement.",
  "Rent is 4,250 euros per month, payable in advance on the first business day of each month by bank transfer.",
  "Rent increases each 1 March by the consumer price index of the preceding year, capped at three percent.",
  "The Lessee pays a deposit of three months' rent within ten days of signing; it is returned within sixty days of the end.",
  "The Lessee keeps the premises in good repair; structural repairs, the roof and the heating system remain with the Lessor.",
  "Patient records stored on the premises are the Lessee's sole responsibility and must be kept in locked cabinets.",
  "Either party may terminate for a material breach not remedied within thirty days of written notice.",
  "The Lessee may sublet only with the Lessor's prior written consent, which may not be unreasonably withheld.",
  "The Lessee insures its equipment and holds liability insurance of at least two million euros per claim.",
];
/** ~3,000 tokens of the generated models' byte-level vocabulary. */
const DOCUMENT = Array.from({ length: 3 }, (_, r) =>
  CLAUSES.map((c, i) => `${r * CLAUSES.length + i + 1}. ${c}`).join("\n"),
).join("\n");

const QUESTIONS = [
  "What is the monthly rent?",
  "When does the term begin?",
  "Who repairs the roof?",
  "How large is the deposit?",
  "Can the lessee sublet?",
  "What insurance must the lessee hold?",
  "How is the rent increased?",
  "How can either party terminate?",
  "Where are patient records kept?",
];
type Task = Pick<JobMessage, "task" | "params">;
const fixed = { maxTokens: MAX_TOKENS, ignoreEos: true, temperature: 0 };
const TASKS: Task[] = [
  { task: "summarize", params: fixed },
  ...QUESTIONS.map((question) => ({ task: "ask" as const, params: { ...fixed, question } })),
  { task: "classify", params: { labels: ["lease", "employment contract", "invoice", "referral letter"], temperature: 0 } },
  {
    task: "extract",
    params: {
      temperature: 0,
      maxTokens: 256,
      schema: {
        type: "object",
        properties: { rent: { type: "string", maxLength: 24 }, start: { type: "string", maxLength: 24 } },
        required: ["rent", "start"],
      },
    },
  },
];

/**
 * Reuse off; on, each worker for itself (DOCKET_PREFIX_SHARE=false); on, shared through NATS; on, shared, and the
 * tasks routed by the producer's rule to the worker holding the document (DOCKET_PREFIX_ROUTING, the default).
 */
type Reuse = "off" | "local" | "shared" | "routed";
const REUSE = (env.BENCH_REUSE ?? "off,local,shared,routed").split(",") as Reuse[];

interface Run {
  model: string;
  workers: number;
  reuse: Reuse;
  wallMs: number;
  promptTokens: number;
  cachedTokens: number;
  evaluatedTokens: number;
  completionTokens: number;
  /** Tasks each worker ran, most first. */
  jobsPerWorker: number[];
  /** FOLLOW_UPS more questions after the 12, one at a time: their total time, and where they ran. */
  followUpMs: number;
  followUpsPerWorker: number[];
}

/** A worker process as `npm start` launches one, with default settings; resolves once it logs "worker ready". */
async function startWorkerProcess(natsUrl: string, modelPath: string, reuse: Reuse, cacheDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(root, "worker/main.ts")], {
    env: {
      ...env,
      NATS_URL: natsUrl,
      DOCKET_MODEL: modelPath,
      DOCKET_WORKER_PORT: "0",
      DOCKET_LOG_FORMAT: "json",
      DOCKET_PREFIX_REUSE: String(reuse !== "off"),
      DOCKET_PREFIX_SHARE: String(reuse === "shared" || reuse === "routed"),
      DOCKET_PREFIX_CACHE_DIR: cacheDir,
      DOCKET_GRACE_SECONDS: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  await new Promise<void>((ready, fail) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('"worker ready"')) ready();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => fail(new Error(`worker exited (${code}):\n${out.slice(-2000)}`)));
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function measure(model: string, modelPath: string, workers: number, reuse: Reuse): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), "docket-bench-docs-"));
  const nats = await startLocalJetStream(join(dir, "nats"));
  const url = nats.url;
  const nc = await connectNats(url, "bench-documents");
  const children: ChildProcess[] = [];
  try {
    await provision(nc);
    for (let i = 0; i < workers; i++) children.push(await startWorkerProcess(url, modelPath, reuse, join(dir, "prefix")));
    const results = new Map<string, EventMessage>();
    const waiting = new Map<number, () => void>();
    const sub = nc.subscribe("docket.events.*.*", {
      callback: (_err, m) => {
        const e = EventMessage.parse(m.json());
        if (e.kind === "failed") console.error(`  job ${e.jobId} failed: ${e.error?.code} ${e.error?.message}`);
        if ((e.kind !== "completed" && e.kind !== "failed") || results.has(e.jobId)) return;
        results.set(e.jobId, e);
        waiting.get(results.size)?.call(undefined);
      },
    });
    const resultsReach = (n: number) => new Promise<void>((r) => waiting.set(n, r));
    const js = jetstream(nc);
    // The producer's publishing rule (producer/shares.ts), routing by the workers' heartbeats in "routed" runs.
    const registry = new WorkerRegistry(nc, createLogger("bench", "silent"));
    await registry.start();
    const shares = new Shares(nc, createLogger("bench", "silent"), {
      weightOf: () => 1,
      provision: {},
      ...(reuse === "routed" ? { holders: registry } : {}),
    });
    const submit = (tasks: Task[], from: number, prefix = "doc") =>
      Promise.all(
        tasks.map(async (t, i) => {
          const job: JobMessage = {
            v: 1,
            id: `${prefix}_${from + i}`,
            lane: "batch",
            task: t.task,
            // Named, as a document uploaded once (POST /v1/documents) and given many tasks.
            input: { text: DOCUMENT, title: "Lease, 14 Harbour Street", documentId: "doc_bench", sha256: textSha256(DOCUMENT) },
            params: t.params,
            submittedAt: new Date().toISOString(),
          };
          const subject = await shares.subject(job);
          if (env.BENCH_DEBUG) console.log(`  ${job.id} -> ${subject}`);
          return js.publish(subject, JSON.stringify(job), { msgID: job.id });
        }),
      );
    // The usual flow: a document comes in and is classified (triage), then the other tasks follow at once.
    const [first, ...rest] = [TASKS[TASKS.length - 2] as Task, ...TASKS.filter((_, i) => i !== TASKS.length - 2)];
    const started = performance.now();
    const one = resultsReach(1);
    await submit([first as Task], 0);
    await one;
    const all = resultsReach(TASKS.length);
    await submit(rest, 1);
    await all;
    const wallMs = performance.now() - started;
    // Follow-up questions, one at a time, as a person asks them after reading the answers: where routing should pay
    // (each finds the prefix live on the worker holding it, rather than loading a checkpoint on another).
    const followUpStarted = performance.now();
    for (let i = 0; i < FOLLOW_UPS; i++) {
      const done = resultsReach(TASKS.length + i + 1);
      const question = `Follow-up ${i + 1}: ${QUESTIONS[i % QUESTIONS.length]}`;
      await submit([{ task: "ask", params: { ...fixed, question } }], i, "followup");
      await done;
    }
    const followUpMs = performance.now() - followUpStarted;
    sub.unsubscribe();
    await registry.stop();
    const main = [...results.values()].filter((e) => e.jobId.startsWith("doc_"));
    const usage = main.map((e) => e.result?.usage);
    const sum = (f: (u: NonNullable<(typeof usage)[number]>) => number) => usage.reduce((a, u) => a + (u ? f(u) : 0), 0);
    const promptTokens = sum((u) => u.promptTokens);
    const cachedTokens = sum((u) => u.cachedTokens ?? 0);
    const perWorker = new Map<string, number>();
    for (const e of main) perWorker.set(e.workerId, (perWorker.get(e.workerId) ?? 0) + 1);
    const followUpWorkers = new Map<string, number>();
    for (const e of results.values())
      if (e.jobId.startsWith("followup_")) followUpWorkers.set(e.workerId, (followUpWorkers.get(e.workerId) ?? 0) + 1);
    return {
      jobsPerWorker: [...perWorker.values()].sort((a, b) => b - a),
      followUpMs: Math.round(followUpMs),
      followUpsPerWorker: [...followUpWorkers.values()].sort((a, b) => b - a),
      model,
      workers,
      reuse,
      wallMs: Math.round(wallMs),
      promptTokens,
      cachedTokens,
      evaluatedTokens: promptTokens - cachedTokens,
      completionTokens: sum((u) => u.completionTokens),
    };
  } finally {
    for (const c of children) await stopProcess(c);
    await nc.close();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  const runs: Run[] = [];
  const ratios: { model: string; workers: number; wallTime: number; evaluated: number; sharingWallTime?: number }[] = [];
  for (const name of MODEL_NAMES) {
    const modelPath = await ensureDemoModel(MODELS[name] as DemoModelOptions);
    console.log(`\n${name} model: 12 tasks on one ${DOCUMENT.length}-character document, ${MAX_TOKENS} tokens per answer`);
    console.log(
      `workers  reuse    wall s   prompt tok   evaluated   reused    generated   tasks per worker ${FOLLOW_UPS} follow-ups one at a time`,
    );
    for (const workers of WORKERS) {
      const by = new Map<Reuse, Run>();
      // Sharing only matters between workers: one worker runs off and shared.
      const modes = (workers > 1 ? ["off", "local", "shared", "routed"] : ["off", "shared"]) as Reuse[];
      for (const reuse of modes.filter((m) => REUSE.includes(m))) {
        const r = await measure(name, modelPath, workers, reuse);
        by.set(reuse, r);
        runs.push(r);
        console.log(
          `${String(workers).padStart(7)}  ${reuse.padEnd(6)} ${(r.wallMs / 1000).toFixed(1).padStart(8)} ${String(r.promptTokens).padStart(12)} ${String(r.evaluatedTokens).padStart(11)} ${String(r.cachedTokens).padStart(8)} ${String(r.completionTokens).padStart(12)}   ${r.jobsPerWorker.join("+").padEnd(16)} ${(r.followUpMs / 1000).toFixed(1).padStart(6)} s, ${r.followUpsPerWorker.join("+")}`,
        );
      }
      const off = by.get("off");
      const on = by.get("shared");
      const local = by.get("local");
      const routed = by.get("routed");
      const x = (a: number, b: number) => Math.round((a / Math.max(1, b)) * 100) / 100;
      const ratio = {
        model: name,
        workers,
        ...(off && on ? { wallTime: x(off.wallMs, on.wallMs), evaluated: x(off.evaluatedTokens, on.evaluatedTokens) } : {}),
        ...(local && on ? { sharingWallTime: x(local.wallMs, on.wallMs) } : {}),
        ...(routed && on
          ? { routingWallTime: x(on.wallMs, routed.wallMs), routingFollowUpTime: x(on.followUpMs, routed.followUpMs) }
          : {}),
      };
      ratios.push(ratio);
      const said = [
        ...(off && on
          ? [
              `reuse takes ${ratio.wallTime}x less wall time and evaluates ${ratio.evaluated}x fewer prompt tokens (goal: 3x less wall time)`,
            ]
          : []),
        ...(local && on ? [`sharing between workers: ${ratio.sharingWallTime}x less wall time than each worker for itself`] : []),
        ...(routed && on
          ? [
              `routing to the worker holding the document: ${ratio.routingWallTime}x less wall time than sharing alone, ${ratio.routingFollowUpTime}x for the follow-ups`,
            ]
          : []),
      ];
      if (said.length) console.log(`  ${workers} worker${workers > 1 ? "s" : ""}: ${said.join("; ")}`);
    }
  }
  const out = join(root, "bench", "results");
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, "documents.json"),
    `${JSON.stringify({ at: new Date().toISOString(), maxTokens: MAX_TOKENS, tasks: TASKS.length, runs, ratios }, null, 2)}\n`,
  );
  console.log(`\nwrote ${join(out, "documents.json")}`);
}

await main();
process.exit(0);
