import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BENCH_MODEL, ensureDemoModel, TEST_MODEL } from "../tools/model/demo-model.ts";
import { QWEN3NEXT, qwen3NextHeader } from "../tools/model/qwen3next-header.ts";
import { modelShape } from "../worker/model-shape.ts";
import {
  DEFAULT_RESERVE_BYTES,
  describePlan,
  MemoryPlanError,
  placeLayers,
  planMemory,
  planMemoryForModel,
  sequencesThatFit,
} from "../worker/planner.ts";

const GiB = 1024 ** 3;

describe("memory planner on the generated demo models", () => {
  it.each([
    ["tiny", TEST_MODEL],
    ["bench", BENCH_MODEL],
  ])("the %s model's KV bytes per token and weights match a hand calculation", async (_, m) => {
    const path = await ensureDemoModel(m);
    const headDim = m.embedding! / m.heads!;
    // every layer keeps K and V: headsKv × headDim each, f16
    const kvPerToken = m.layers! * 2 * m.headsKv! * headDim * 2;
    const plan = await planMemoryForModel(path, { budgetBytes: 2e9, maxSequences: 4, contextSize: 1024 });
    expect(plan.kvBytesPerToken).toBe(kvPerToken);
    expect(plan.recurrentStateBytesPerSequence).toBe(0);
    expect(plan.sequences).toBe(4);
    expect(plan.contextSize).toBe(1024);
    expect(plan.kvCacheBytes).toBe(4 * 1024 * kvPerToken);
    // the tensors fill the file but for its header and alignment padding
    const size = (await stat(path)).size;
    expect(plan.modelBytes).toBeLessThanOrEqual(size);
    expect(plan.modelBytes).toBeGreaterThan(size * 0.7);
    // every layer on the GPU: all weights but the token embeddings, which llama.cpp keeps in system memory
    expect(plan.gpuLayers).toBe(m.layers! + 1);
    expect(plan.gpuWeightBytes).toBe(plan.modelBytes - plan.shape.inputBytes);
    expect(plan.systemBytes).toBe(plan.shape.inputBytes);
    expect(plan.totalBytes).toBe(plan.gpuWeightBytes + DEFAULT_RESERVE_BYTES + plan.kvCacheBytes);
    expect(plan.engineGpuLayers).toBeUndefined();

    // node-llama-cpp's own estimate: same weights; its context estimate is our KV cache plus compute
    // buffers, which our reserve covers
    const insights = await GgufInsights.from(await readGgufFileInfo(path));
    expect(insights.modelSize).toBe(plan.modelBytes);
    const theirs = insights.estimateContextResourceRequirements({ contextSize: 1024, sequences: 4, modelGpuLayers: 0 });
    expect(theirs.cpuRam).toBeGreaterThanOrEqual(plan.kvCacheBytes);
    expect(theirs.cpuRam).toBeLessThan(plan.kvCacheBytes + DEFAULT_RESERVE_BYTES);
  });

  it("reduces sequences first, then the context, to fit a small budget", async () => {
    const path = await ensureDemoModel(BENCH_MODEL);
    const shape = modelShape(await readGgufFileInfo(path));
    const weights = shape.modelBytes - shape.inputBytes;
    const perSeq1024 = 1024 * shape.kvBytesPerToken;
    const budget = weights + 1e6 + 2.5 * perSeq1024;
    const fewer = planMemory({ shape, budgetBytes: budget, maxSequences: 8, contextSize: 1024, reserveBytes: 1e6 });
    expect([fewer.sequences, fewer.contextSize, fewer.gpuLayers]).toEqual([2, 1024, shape.layers + 1]);
    expect(fewer.notes.join(" ")).toContain("2 of DOCKET_MAX_BATCH=8");

    const shorter = planMemory({
      shape,
      budgetBytes: budget,
      maxSequences: 8,
      contextSize: 4096,
      reserveBytes: 1e6,
      minContextSize: 512,
      gpuLayers: shape.layers + 1,
    });
    // 2.5 × 1024 tokens of room: one sequence, rounded down to a multiple of 256
    expect([shorter.sequences, shorter.contextSize]).toEqual([1, 2560]);
    expect(shorter.totalBytes).toBeLessThanOrEqual(budget);
  });

  it("DOCKET_GPU_LAYERS=N puts the last N layers and their KV cache on the GPU and the rest in system memory", async () => {
    const path = await ensureDemoModel(BENCH_MODEL);
    const shape = modelShape(await readGgufFileInfo(path));
    const layers = shape.layers; // 8
    const perLayerKv = shape.kvBytesPerToken / layers;
    const plan = planMemory({ shape, budgetBytes: 2e9, maxSequences: 4, contextSize: 1024, gpuLayers: 3 });
    const onGpu = shape.perLayer.slice(layers - 3);
    expect(plan.gpuLayers).toBe(3);
    expect(plan.engineGpuLayers).toBe(3);
    expect(plan.gpuWeightBytes).toBe(onGpu.reduce((s, l) => s + l.weightBytes, 0));
    expect(plan.gpuContextBytes).toBe(4 * 1024 * 3 * perLayerKv);
    // the other five layers, the output layer and the token embeddings, with the KV cache of those five
    expect(plan.systemBytes).toBe(plan.modelBytes - plan.gpuWeightBytes + 4 * 1024 * 5 * perLayerKv);
    expect(plan.totalBytes).toBe(plan.gpuWeightBytes + DEFAULT_RESERVE_BYTES + plan.gpuContextBytes);
    expect(describePlan(plan)).toContain("3 of 9 layers on the GPU");
    // layers + 1 is the whole model: the output layer joins the GPU
    const all = placeLayers(shape, { gpuLayers: layers + 1 });
    const most = placeLayers(shape, { gpuLayers: layers });
    expect(all.gpu.weightBytes - most.gpu.weightBytes).toBe(shape.outputBytes);
    expect(all.system.weightBytes).toBe(shape.inputBytes);
  });

  it("CPU only: the budget is system memory and holds the whole model, token embeddings included", async () => {
    const path = await ensureDemoModel(TEST_MODEL);
    const shape = modelShape(await readGgufFileInfo(path));
    const plan = planMemory({ shape, budgetBytes: 2e9, maxSequences: 2, contextSize: 1024, cpuOnly: true });
    expect(plan.gpuWeightBytes).toBe(plan.modelBytes);
    expect(plan.systemBytes).toBe(0);
    expect(plan.engineGpuLayers).toBeUndefined();
  });
});

describe("memory planner on a Qwen3-Next-80B-A3B Q4_K_M header", () => {
  let dir: string;
  let path: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "docket-planner-"));
    path = join(dir, "qwen3next-q4_k_m.gguf");
    await qwen3NextHeader("Q4_K_M").writeHeader(path);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  // Hand calculation from the model card.
  const m = QWEN3NEXT;
  const attentionLayers = m.layers / m.fullAttentionInterval; // 12
  const recurrentLayers = m.layers - attentionLayers; // 36
  const kvPerToken = attentionLayers * 2 * m.headsKv * m.headDim * 2; // K+V, f16: 24 KiB
  // llama_hparams::n_embd_r() (conv state) + n_embd_s() (delta-rule state), f32, per recurrent layer
  const innerSize = m.linearValueHeadDim * m.linearValueHeads; // 4096
  const convState = (m.convKernel - 1) * (innerSize + 2 * m.linearKeyHeads * m.linearKeyHeadDim); // 3 × 8192
  const deltaState = m.linearKeyHeadDim * innerSize; // 128 × 4096: 32 value heads of 128 × 128
  const recurrentPerSequence = recurrentLayers * (convState + deltaState) * 4; // 79.0 MB
  // Q4_K token embeddings stay in system memory: 151936 × 2048 at 144 bytes per 256
  const tokenEmbd = (m.vocab * m.embedding * 144) / 256;
  const perSequence = 8192 * kvPerToken + recurrentPerSequence;

  it("reads 12 KV layers at 24 KiB/token, 36 recurrent layers of fixed state, and 45.08 GiB of weights", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 50e9, maxSequences: 32, contextSize: 8192 });
    expect(kvPerToken).toBe(24 * 1024);
    expect(plan.kvBytesPerToken).toBe(kvPerToken);
    expect(plan.shape.attentionLayers).toBe(12);
    expect(plan.shape.recurrentLayers).toBe(36);
    expect(plan.recurrentStateBytesPerSequence).toBe(recurrentPerSequence);
    expect(plan.shape.inputBytes).toBe(tokenEmbd);
    expect(plan.modelBytes / GiB).toBeCloseTo(45.08, 2);
    // only attention layers grow with the context; recurrent ones hold the same state at any length
    expect(plan.shape.perLayer.filter((l) => l.kvBytesPerToken > 0)).toHaveLength(12);
    expect(plan.shape.perLayer[3]).toMatchObject({ kvBytesPerToken: 2048, stateBytesPerSequence: 0 });
    expect(plan.shape.perLayer[0]).toMatchObject({ kvBytesPerToken: 0, stateBytesPerSequence: recurrentPerSequence / 36 });
  });

  it("fits two 8192-token sequences next to Q4_K_M weights in 50 GB and names the DOCKET_GPU_LAYERS of the full batch", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 50e9, maxSequences: 32, contextSize: 8192 });
    const free = 50e9 - (plan.modelBytes - tokenEmbd) - DEFAULT_RESERVE_BYTES;
    expect(plan.sequences).toBe(Math.floor(free / perSequence));
    expect(plan.sequences).toBe(2);
    expect([plan.contextSize, plan.gpuLayers]).toEqual([8192, 49]);
    expect(plan.totalBytes).toBeLessThanOrEqual(50e9);
    // 32 × 8192: 6.44 GB of KV + 2.53 GB of recurrent state
    expect(plan.wantedBytes).toBe(plan.modelBytes - tokenEmbd + DEFAULT_RESERVE_BYTES + 32 * perSequence);
    // the most layers on the GPU that leave room for 32 × 8192, checked one layer either side
    const g = plan.gpuLayersForFullBatch!;
    const at = (gpuLayers: number) =>
      planMemory({ shape: plan.shape, budgetBytes: 50e9, maxSequences: 32, contextSize: 8192, gpuLayers });
    expect(at(g).sequences).toBe(32);
    expect(at(g + 1).sequences).toBeLessThan(32);
    expect(g).toBe(41);
    const line = describePlan(plan);
    expect(line).toContain("2 sequences × 8192 tokens, 49 of 49 layers on the GPU");
    expect(line).toContain("KV 24.6 kB/token");
    expect(line).toContain("DOCKET_GPU_LAYERS=41 (7 of 48 layers and the output layer");
  });

  it("plans the full 32 × 8192 batch when the budget holds it", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 60e9, maxSequences: 32, contextSize: 8192 });
    expect([plan.sequences, plan.contextSize]).toEqual([32, 8192]);
    expect(plan.kvCacheBytes).toBe(32 * 8192 * kvPerToken);
    expect(plan.recurrentStateBytes).toBe(32 * recurrentPerSequence);
  });

  it("at 48 GB, where the weights leave no room, auto keeps the fewest layers in system memory that let one sequence run", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 48e9, maxSequences: 32, contextSize: 8192 });
    expect(plan.gpuLayers).toBe(46);
    expect(plan.engineGpuLayers).toBe(46);
    expect(plan.sequences).toBeGreaterThanOrEqual(1);
    expect(plan.totalBytes).toBeLessThanOrEqual(48e9);
    // one layer more on the GPU and not one sequence of 8192 tokens fits
    expect(sequencesThatFit(plan.shape, { budgetBytes: 48e9, contextSize: 8192, gpuLayers: 47 })).toBe(0);
    expect(plan.notes.join(" ")).toContain("DOCKET_GPU_LAYERS=auto chose 46 (2 of 48 layers and the output layer");
  });

  it("auto keeps at most a quarter of the layers off the GPU; past that it refuses and names the count to set", async () => {
    const err = await planMemoryForModel(path, { budgetBytes: 30e9, maxSequences: 32, contextSize: 8192 }).catch((e) => e);
    expect(err).toMatchObject({ code: "insufficient_memory" });
    const named = Number(/DOCKET_GPU_LAYERS=(\d+)/.exec(err.message)?.[1]);
    expect(49 - named).toBeGreaterThan(12);
    const explicit = await planMemoryForModel(path, { budgetBytes: 30e9, maxSequences: 32, contextSize: 8192, gpuLayers: named });
    expect(explicit).toMatchObject({ gpuLayers: named, contextSize: 8192 });
    expect(explicit.sequences).toBeGreaterThanOrEqual(1);
    expect(explicit.totalBytes).toBeLessThanOrEqual(30e9);
  });

  it("refuses a budget that even one layer off the GPU cannot satisfy, naming the numbers and what to change", async () => {
    const err = await planMemoryForModel(path, { budgetBytes: 48e9, maxSequences: 32, contextSize: 8192, gpuLayers: 49 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(MemoryPlanError);
    expect(err.code).toBe("insufficient_memory");
    expect(err.message).toContain("weights 48.23 GB");
    expect(err.message).toContain("DOCKET_GPU_MEMORY_BYTES 48.00 GB");
    expect(err.message).toMatch(/smaller quantization/);
    expect(err.message).toMatch(/keep layers in system memory: DOCKET_GPU_LAYERS=4\d/);
  });
});
