import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { ensureDemoModel, TEST_MODEL } from "../../tools/model/demo-model.ts";
import { Engine, EngineLoadError } from "../../worker/engine.ts";

let dir: string;
let tiny: string;
let corrupt: string;
const lines: Record<string, unknown>[] = [];
const log = createLogger("test", "silent");
const capture = Object.assign(Object.create(log), {
  warn: (obj: Record<string, unknown>, msg: string) => lines.push({ ...obj, msg }),
  info: (obj: Record<string, unknown>, msg: string) => lines.push({ ...obj, msg }),
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-ladder-"));
  tiny = await ensureDemoModel(TEST_MODEL);
  // An interrupted download: the first half of a real model file.
  corrupt = join(dir, "corrupt.gguf");
  const bytes = await readFile(tiny);
  await writeFile(corrupt, bytes.subarray(0, bytes.length / 2));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const base = { gpu: false as const, threads: 1, contextSize: 1024 };

describe("degradation ladder (real engine)", () => {
  it("a context that cannot be created is retried with fewer sequences, and the step is logged", async () => {
    lines.length = 0;
    // llama.cpp refuses more than 256 sequences in one context: the ladder halves until it fits.
    const engine = await Engine.load({ ...base, modelPath: tiny, sequences: 400, log: capture });
    try {
      expect(engine.sequences).toBe(200);
      expect(lines.some((l) => l.step === "fewer sequences" && l.sequences === 400)).toBe(true);
      expect(lines.find((l) => l.msg === "model loaded")).toMatchObject({ sequences: 200, degraded: true });
    } finally {
      await engine.close();
    }
  });

  it("a model that cannot load falls back to DOCKET_FALLBACK_MODEL", async () => {
    lines.length = 0;
    const engine = await Engine.load({ ...base, modelPath: corrupt, fallbackModelPath: tiny, sequences: 2, log: capture });
    try {
      expect(engine.modelName).toBe("docket-demo-tiny");
      expect(lines.some((l) => l.step === "model")).toBe(true);
      expect(lines.some((l) => l.step === "fallback model")).toBe(true);
    } finally {
      await engine.close();
    }
  });

  it("when nothing can run, loading fails with a clear error listing what was tried", async () => {
    const load = Engine.load({ ...base, modelPath: corrupt, sequences: 2, log });
    await expect(load).rejects.toThrow(EngineLoadError);
    await expect(Engine.load({ ...base, modelPath: corrupt, sequences: 2, log })).rejects.toThrow(/corrupt\.gguf/);
  });
});

describe("memory planner at worker start", () => {
  it("a worker refuses to start with a clear message when even one sequence does not fit the budget", async () => {
    const { startWorker } = await import("../../worker/worker.ts");
    const { testConfig } = await import("../helpers/stack.ts");
    const config = testConfig({ DOCKET_GPU_MEMORY: "1MB", NATS_URL: "nats://127.0.0.1:1" });
    await expect(startWorker(config, log)).rejects.toMatchObject({ code: "insufficient_memory" });
    await expect(startWorker(config, log)).rejects.toThrow(/DOCKET_GPU_MEMORY/);
  });

  it("a worker without DOCKET_MODEL refuses to start and says how to name a model (it never generates one)", async () => {
    const { startWorker } = await import("../../worker/worker.ts");
    const { testConfig } = await import("../helpers/stack.ts");
    const config = testConfig({ DOCKET_MODEL: "", NATS_URL: "nats://127.0.0.1:1" });
    await expect(startWorker(config, log)).rejects.toMatchObject({ code: "model_not_found" });
    await expect(startWorker(config, log)).rejects.toThrow(/DOCKET_MODEL is not set/);
  });
});

describe("math threads", () => {
  it("candidates are one thread, all cores but one, and all cores", async () => {
    const { threadCandidates } = await import("../../worker/engine.ts");
    expect(threadCandidates(1)).toEqual([1]);
    expect(threadCandidates(2)).toEqual([1, 2]);
    expect(threadCandidates(8)).toEqual([1, 7, 8]);
  });

  it("with DOCKET_THREADS=0 on CPU the engine measures each candidate on the model and runs with the fastest", async () => {
    lines.length = 0;
    const engine = await Engine.load({ ...base, threads: 0, modelPath: tiny, sequences: 1, log: capture });
    try {
      const line = lines.find((l) => String(l.msg).startsWith("math threads measured")) as
        | { threads: number; tokensPerSecond: Record<string, number> }
        | undefined;
      expect(line).toBeDefined();
      const measured = line?.tokensPerSecond ?? {};
      expect(Object.keys(measured).length).toBeGreaterThanOrEqual(1);
      const fastest = Object.entries(measured).sort((a, b) => b[1] - a[1])[0]?.[0];
      expect(String(line?.threads)).toBe(fastest);
      expect(lines.find((l) => l.msg === "model loaded")).toMatchObject({ threads: line?.threads });
    } finally {
      await engine.close();
    }
  });
});
