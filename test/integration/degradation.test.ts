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

const base = { gpu: false as const, threads: 1, contextSize: 1024 };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-ladder-"));
  tiny = await ensureDemoModel(TEST_MODEL);
  // An interrupted download: the first half of a real model file.
  corrupt = join(dir, "corrupt.gguf");
  const bytes = await readFile(tiny);
  await writeFile(corrupt, bytes.subarray(0, bytes.length / 2));
  // The first engine in a process also loads and tests node-llama-cpp's native binding (a child process): done here,
  // under the hook's timeout, so the ladder test below times the ladder only (CI once ran past 60 s there).
  await (await Engine.load({ ...base, modelPath: tiny, sequences: 1, log })).close();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("degradation ladder (real engine)", () => {
  it("a context that cannot be created is retried with fewer sequences, and the step is logged", async () => {
    lines.length = 0;
    // llama.cpp refuses more than 256 sequences in one context: the ladder halves until it fits.
    // A 256-token context: the refusal is about sequences, and 200 sequences of 1024 tokens is more to allocate.
    const engine = await Engine.load({ ...base, contextSize: 256, modelPath: tiny, sequences: 400, log: capture });
    try {
      expect(engine.sequences).toBe(200);
      expect(lines.some((l) => l.step === "fewer sequences" && l.sequences === 400)).toBe(true);
      expect(lines.find((l) => l.msg === "model loaded")).toMatchObject({ sequences: 200, degraded: true });
    } finally {
      await engine.close();
    }
    // CI ran this test past 60 s twice, beside the rest of the suite on 2 cores (1-3 s alone): cause not found.
  }, 180_000);

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
    const config = testConfig({ DOCKET_GPU_MEMORY_BYTES: "1MB", NATS_URL: "nats://127.0.0.1:1" });
    await expect(startWorker(config, log)).rejects.toMatchObject({ code: "insufficient_memory" });
    await expect(startWorker(config, log)).rejects.toThrow(/DOCKET_GPU_MEMORY_BYTES/);
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
  it("by default the engine leaves one core to the event loop, the producer and nats-server", async () => {
    const { defaultThreads } = await import("../../worker/engine.ts");
    expect(defaultThreads(1)).toBe(1);
    expect(defaultThreads(2)).toBe(1);
    expect(defaultThreads(16)).toBe(15);
    lines.length = 0;
    const engine = await Engine.load({ ...base, threads: 0, modelPath: tiny, sequences: 1, log: capture });
    try {
      expect(lines.find((l) => l.msg === "model loaded")).toMatchObject({ threads: defaultThreads() });
    } finally {
      await engine.close();
    }
  });
});
