import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { provision } from "../../runtime/provision.ts";
import type { JobMessage } from "../../schema/job.ts";
import { PREFIX_BUCKET } from "../../schema/subjects.ts";
import { BENCH_MODEL, type DemoModelOptions, ensureDemoModel, HYBRID_TEST_MODEL } from "../../tools/model/demo-model.ts";
import { Engine } from "../../worker/engine.ts";
import { executeJob } from "../../worker/execute.ts";
import { startTestNats } from "../helpers/nats.ts";

// One document, several tasks: the document's evaluated prompt is reused across the jobs on it (issue 10).
const contract = (party: string) =>
  `Lease agreement. ${party} shall pay the lessor rent of 1,200 euros on the first day of each month. `.repeat(14);
const DOC_A = contract("The lessee");
const DOC_B = contract("Harbour Freight Ltd");

type Task = Pick<JobMessage, "task" | "params">;
const TASKS: Task[] = [
  { task: "summarize", params: {} },
  { task: "ask", params: { question: "Who pays the rent?" } },
  { task: "classify", params: { labels: ["lease", "invoice", "letter"] } },
  {
    task: "extract",
    params: { schema: { type: "object", properties: { rent: { type: "string", maxLength: 12 } }, required: ["rent"] } },
  },
];

let n = 0;
function job(t: Task, text: string, documentId: string): JobMessage {
  return {
    v: 1,
    id: `j${++n}`,
    lane: "batch",
    task: t.task,
    input: { text, documentId },
    // Greedy, and a fixed number of tokens: the answers are long enough to diverge if any logit differs.
    params: {
      seed: 7,
      temperature: 0,
      ...(t.task === "extract" ? { maxTokens: 96 } : { maxTokens: 24, ignoreEos: true }),
      ...t.params,
    },
    submittedAt: new Date().toISOString(),
  };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function engineWith(
  reuse: boolean,
  budgetBytes = 1e9,
  dir?: string,
  model: DemoModelOptions = BENCH_MODEL,
): Promise<Engine> {
  const cacheDir = dir ?? (await mkdtemp(join(tmpdir(), "docket-prefix-test-")));
  dirs.push(cacheDir);
  return Engine.load({
    modelPath: await ensureDemoModel(model),
    gpu: false,
    threads: 1,
    // One sequence: the jobs run one after another, so the third job on DOC_A must come from a checkpoint.
    sequences: 1,
    contextSize: 2048,
    prefixCache: { reuse, dir: cacheDir, budgetBytes },
    log: createLogger("test", "silent"),
  });
}

/** A, B, A, A, A: the second A job loads A's checkpoint (B took the only sequence), the rest find A live. */
const PLAN: [Task, string, string][] = [
  [TASKS[0] as Task, DOC_A, "doc_a"],
  [TASKS[0] as Task, DOC_B, "doc_b"],
  [TASKS[1] as Task, DOC_A, "doc_a"],
  [TASKS[2] as Task, DOC_A, "doc_a"],
  [TASKS[3] as Task, DOC_A, "doc_a"],
];

async function runPlan(engine: Engine) {
  const signal = new AbortController().signal;
  const out = [];
  for (const [t, text, doc] of PLAN) {
    out.push(await executeJob(job(t, text, doc), { engine, document: text, defaultMaxTokens: 24, signal }));
  }
  return out;
}

describe("document prefix reuse", () => {
  // The hybrid model is Qwen3-Next's kind (gated delta net + attention): its recurrent state cannot drop a
  // suffix, so going back to the prefix after a job restores the checkpoint taken at the prefix's end.
  it.each([
    ["a llama model", BENCH_MODEL],
    ["a hybrid (qwen3next) model", HYBRID_TEST_MODEL],
  ] as [string, DemoModelOptions][])(
    "on %s, every task's output is byte-identical with and without reuse, and the document is evaluated once",
    async (_, model) => {
      const off = await engineWith(false, 1e9, undefined, model);
      const without = await runPlan(off);
      await off.close();

      const on = await engineWith(true, 1e9, undefined, model);
      const sources: string[] = [];
      on.onPrefix = (source) => sources.push(source);
      const withReuse = await runPlan(on);
      await on.close();

      expect(withReuse.map((r) => r.text)).toEqual(without.map((r) => r.text));
      expect(withReuse.map((r) => r.json)).toEqual(without.map((r) => r.json));
      // A and B are evaluated, the second A job comes from A's checkpoint, the last two from the live sequence.
      expect(sources).toEqual(["evaluated", "evaluated", "checkpoint", "live", "live"]);
      const cached = withReuse.map((r) => r.usage.cachedTokens ?? 0);
      expect(cached.slice(0, 2)).toEqual([0, 0]);
      for (const c of cached.slice(2)) expect(c).toBeGreaterThan(400);
      expect(without.every((r) => r.usage.cachedTokens === 0)).toBe(true);
      // The same prompts were billed either way.
      expect(withReuse.map((r) => r.usage.promptTokens)).toEqual(without.map((r) => r.usage.promptTokens));
    },
    240_000,
  );

  it("keeps checkpoints within the budget, least recently used evicted, and drops another model's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "docket-prefix-test-"));
    // Left by a worker of another model (and one of a process long gone): deleted on the first save.
    await mkdir(join(dir, "0123456789abcdef-1"), { recursive: true });
    await writeFile(join(dir, "0123456789abcdef-1", "x.state"), "stale");
    const probe = await engineWith(true, 1e9, dir);
    await executeJob(job(TASKS[0] as Task, DOC_A, "doc_a"), {
      engine: probe,
      document: DOC_A,
      defaultMaxTokens: 24,
      signal: new AbortController().signal,
    });
    const one = probe.prefixes.stats.checkpointBytes;
    await probe.close();
    expect(one).toBeGreaterThan(0);

    // Room for one document's checkpoint, not two.
    const engine = await engineWith(true, Math.floor(one * 1.5), dir);
    const signal = new AbortController().signal;
    for (const [text, doc] of [
      [DOC_A, "doc_a"],
      [DOC_B, "doc_b"],
    ] as const) {
      await executeJob(job(TASKS[0] as Task, text, doc), { engine, document: text, defaultMaxTokens: 24, signal });
    }
    expect(engine.prefixes.stats.checkpoints).toBe(1);
    expect(engine.prefixes.stats.checkpointBytes).toBeLessThanOrEqual(Math.floor(one * 1.5));
    const folders = await readdir(dir);
    expect(folders).toHaveLength(1);
    expect(folders[0]).toMatch(new RegExp(`-${process.pid}-\\d+$`));
    // B's checkpoint is the one kept; A (evicted, and no longer in the sequence) is evaluated again.
    const sources: string[] = [];
    engine.onPrefix = (source) => sources.push(source);
    await executeJob(job(TASKS[1] as Task, DOC_A, "doc_a"), { engine, document: DOC_A, defaultMaxTokens: 24, signal });
    expect(sources).toEqual(["evaluated"]);
    await engine.close();
    expect(await readdir(dir)).toEqual([]);
  }, 240_000);

  it("a second worker loads the prefix another worker shared through NATS instead of evaluating it", async () => {
    const nats = await startTestNats();
    try {
      const nc = await nats.connect("prefix-share");
      await provision(nc);
      const signal = new AbortController().signal;
      const run = (engine: Engine, t: Task, text: string) =>
        executeJob(job(t, text, "doc"), { engine, document: text, defaultMaxTokens: 24, signal });
      const workers = [await engineWith(true), await engineWith(true)] as [Engine, Engine];
      const sources: string[][] = [[], []];
      for (const [i, engine] of workers.entries()) {
        engine.prefixes.share(nc);
        engine.onPrefix = (source) => sources[i]?.push(source);
      }
      const reference = await engineWith(false);

      // One after the other: the second worker downloads what the first uploaded.
      const first = await run(workers[0], TASKS[0] as Task, DOC_A);
      const os = await new Objm(jetstream(nc)).open(PREFIX_BUCKET);
      for (let i = 0; (await os.list()).length === 0; i++) {
        expect(i).toBeLessThan(200);
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = await run(workers[1], TASKS[1] as Task, DOC_A);
      expect(sources).toEqual([["evaluated"], ["shared"]]);
      expect(second.usage.cachedTokens).toBeGreaterThan(400);
      expect(second.text).toBe((await run(reference, TASKS[1] as Task, DOC_A)).text);
      expect(first.text).toBe((await run(reference, TASKS[0] as Task, DOC_A)).text);

      for (const w of workers) await w.close();
      await reference.close();
    } finally {
      await nats.stop();
    }
  }, 240_000);
});
