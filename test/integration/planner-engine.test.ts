import { getLlama, LlamaLogLevel, readGgufFileInfo } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { ensureDemoModel, HYBRID_TEST_MODEL } from "../../tools/model/demo-model.ts";
import { modelShape } from "../../worker/model-shape.ts";
import { planMemory } from "../../worker/planner.ts";

const MiB = 1024 ** 2;

describe("the memory planner against the engine", () => {
  it("for the generated hybrid (qwen3next) model, KV cache and recurrent state are what llama.cpp allocates", async () => {
    const path = await ensureDemoModel(HYBRID_TEST_MODEL);
    const shape = modelShape(await readGgufFileInfo(path, { logWarnings: false }));
    // 1 of 4 layers keeps KV, 3 keep a conv + delta-rule state per sequence
    expect([shape.attentionLayers, shape.recurrentLayers]).toEqual([1, 3]);
    const plan = planMemory({ shape, budgetBytes: 2e9, maxSequences: 8, contextSize: 2048 });
    expect([plan.sequences, plan.contextSize]).toEqual([8, 2048]);

    // llama.cpp reports what it allocated, in MiB with two decimals, at context creation.
    const lines: string[] = [];
    const llama = await getLlama({
      gpu: false,
      maxThreads: 1,
      logLevel: LlamaLogLevel.info,
      logger: (_level, message) => lines.push(message),
    });
    try {
      const model = await llama.loadModel({ modelPath: path });
      const context = await model.createContext({ sequences: 8, contextSize: 2048 });
      await context.dispose();
      await model.dispose();
    } finally {
      await llama.dispose();
    }
    const mib = (pattern: RegExp) => Number(lines.map((l) => pattern.exec(l)?.[1]).find((v) => v !== undefined));
    const kv = mib(/llama_kv_cache: size =\s+([\d.]+) MiB/);
    const state = mib(/llama_memory_recurrent: size =\s+([\d.]+) MiB/);
    expect(kv).toBeCloseTo(plan.kvCacheBytes / MiB, 2); // 8 × 2048 × 128 B = 2.00 MiB
    expect(state).toBeCloseTo(plan.recurrentStateBytes / MiB, 2); // 8 × 3 × (384 + 1024) f32 = 0.13 MiB
  });
});
