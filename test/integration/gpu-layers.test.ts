import { Llama, type LlamaModelOptions } from "node-llama-cpp";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { ensureDemoModel, TEST_MODEL } from "../../tools/model/demo-model.ts";
import { Engine } from "../../worker/engine.ts";
import { startStack } from "../helpers/stack.ts";

// This machine has no GPU: node-llama-cpp then loads every layer in system memory whatever gpuLayers says,
// so these tests check that the setting reaches node-llama-cpp's loadModel, and that the model still runs.
const log = createLogger("test", "silent");

afterEach(() => vi.restoreAllMocks());

describe("DOCKET_GPU_LAYERS", () => {
  it("the engine hands gpuLayers to node-llama-cpp's loadModel for the main model, not for the fallback", async () => {
    const loadModel = vi.spyOn(Llama.prototype, "loadModel");
    const tiny = await ensureDemoModel(TEST_MODEL);
    const engine = await Engine.load({
      modelPath: tiny,
      gpu: false,
      threads: 1,
      sequences: 1,
      contextSize: 512,
      gpuLayers: 3,
      log,
    });
    try {
      expect(loadModel).toHaveBeenCalledTimes(1);
      expect(loadModel.mock.calls[0]?.[0]).toMatchObject({ modelPath: tiny, gpuLayers: 3 } satisfies LlamaModelOptions);
      const answer = await engine.generate({ prompt: "Hello", maxTokens: 4, seed: 1 });
      expect(answer.completionTokens).toBeGreaterThan(0);
    } finally {
      await engine.close();
    }

    loadModel.mockClear();
    const withFallback = await Engine.load({
      modelPath: `${tiny}.missing`,
      fallbackModelPath: tiny,
      gpu: false,
      threads: 1,
      sequences: 1,
      contextSize: 512,
      gpuLayers: 3,
      log,
    });
    await withFallback.close();
    expect(loadModel.mock.calls.map((c) => c[0].gpuLayers)).toEqual([3, undefined]);
  });

  it("a worker started with DOCKET_GPU_LAYERS=3 plans 3 layers on the GPU and loads the model with them", async () => {
    const loadModel = vi.spyOn(Llama.prototype, "loadModel");
    const stack = await startStack({ env: { DOCKET_GPU: "auto", DOCKET_GPU_LAYERS: "3" } });
    try {
      expect(stack.worker?.plan).toMatchObject({ gpuLayers: 3, engineGpuLayers: 3, cpuOnly: false });
      expect(loadModel.mock.calls[0]?.[0]).toMatchObject({ gpuLayers: 3 });
    } finally {
      await stack.stop();
    }
  });
});
