import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BENCH_MODEL, ensureDemoModel, TEST_MODEL } from "../tools/model/demo-model.ts";
import { QWEN3NEXT, qwen3NextHeader } from "../tools/model/qwen3next-header.ts";
import {
  DEFAULT_RESERVE_BYTES,
  describePlan,
  MemoryPlanError,
  modelShape,
  planMemory,
  planMemoryForModel,
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
    expect(plan.totalBytes).toBe(plan.modelBytes + DEFAULT_RESERVE_BYTES + plan.kvCacheBytes);

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
    const perSeq1024 = 1024 * shape.kvBytesPerToken;
    const budget = shape.modelBytes + 1e6 + 2.5 * perSeq1024;
    const fewer = planMemory({ shape, budgetBytes: budget, maxSequences: 8, contextSize: 1024, reserveBytes: 1e6 });
    expect([fewer.sequences, fewer.contextSize]).toEqual([2, 1024]);
    expect(fewer.notes.join(" ")).toContain("2 of DOCKET_MAX_BATCH=8");

    const shorter = planMemory({
      shape,
      budgetBytes: budget,
      maxSequences: 8,
      contextSize: 4096,
      reserveBytes: 1e6,
      minContextSize: 512,
    });
    // 2.5 × 1024 tokens of room: one sequence, rounded down to a multiple of 256
    expect([shorter.sequences, shorter.contextSize]).toEqual([1, 2560]);
    expect(shorter.totalBytes).toBeLessThanOrEqual(budget);
  });
});

describe("memory planner on a Qwen3-Next-80B-A3B Q4_K_M header", () => {
  let dir: string;
  let path: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "docket-planner-"));
    path = join(dir, "qwen3next-q4_k_m.gguf");
    await qwen3NextHeader().writeHeader(path);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  // Hand calculation from the model card.
  const m = QWEN3NEXT;
  const attentionLayers = m.layers / m.fullAttentionInterval; // 12
  const recurrentLayers = m.layers - attentionLayers; // 36
  const kvPerToken = attentionLayers * 2 * m.headsKv * m.headDim * 2; // K+V, f16: 24 KiB
  const innerSize = m.linearValueHeadDim * m.linearValueHeads; // 4096
  const convState = (m.convKernel - 1) * (innerSize + 2 * m.linearKeyHeads * m.linearKeyHeadDim); // 3 × 8192
  const deltaState = m.linearKeyHeadDim * innerSize; // 128 × 4096
  const recurrentPerSequence = recurrentLayers * (convState + deltaState) * 4; // f32
  // Q4_K: 144 bytes per 256 weights, Q6_K: 210. Experts dominate: 48 layers × 512 experts × 3 matrices of 2048 × 512.
  const expertMatrix = m.embedding * m.expertFeedForward * m.experts;
  const moreBitsLayers = 6 + 6 + 12; // use_more_bits: first 6, last 6, every third of the 36 in between
  const experts =
    (48 * 2 * expertMatrix + (48 - moreBitsLayers) * expertMatrix) * (144 / 256) + moreBitsLayers * expertMatrix * (210 / 256);

  it("reads 12 KV layers at 24 KiB/token, 36 recurrent layers of fixed state, and 45.08 GiB of weights", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 50e9, maxSequences: 32, contextSize: 8192 });
    expect(kvPerToken).toBe(24 * 1024);
    expect(plan.kvBytesPerToken).toBe(kvPerToken);
    expect(plan.shape.attentionLayers).toBe(12);
    expect(plan.shape.recurrentLayers).toBe(36);
    expect(plan.recurrentStateBytesPerSequence).toBe(recurrentPerSequence); // 79.0 MB
    expect(plan.shape.expertBytes).toBe(experts);
    expect(plan.modelBytes / GiB).toBeCloseTo(45.08, 2);
  });

  it("fits one 8192-token sequence next to Q4_K_M weights in 50 GB and says what the full batch needs", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 50e9, maxSequences: 32, contextSize: 8192 });
    const free = 50e9 - plan.modelBytes - DEFAULT_RESERVE_BYTES;
    const perSequence = 8192 * kvPerToken + recurrentPerSequence;
    expect(plan.sequences).toBe(Math.floor(free / perSequence));
    expect(plan.sequences).toBe(1);
    expect(plan.contextSize).toBe(8192);
    expect(plan.totalBytes).toBeLessThanOrEqual(50e9);
    // 32 × 8192: 6.44 GB of KV + 2.53 GB of recurrent state
    const fullBatch = 32 * perSequence;
    expect(plan.wantedBytes).toBe(plan.modelBytes + DEFAULT_RESERVE_BYTES + fullBatch);
    expect(plan.maxModelBytesForFullBatch).toBe(50e9 - DEFAULT_RESERVE_BYTES - fullBatch);
    const expertsPerLayer = plan.shape.expertBytes / 48;
    expect(plan.cpuLayersForFullBatch).toBe(Math.ceil((plan.wantedBytes - 50e9) / expertsPerLayer));
    const line = describePlan(plan);
    expect(line).toContain("1 sequences × 8192 tokens");
    expect(line).toContain("24.0 KiB/token");
    expect(line).toContain(`keep ${plan.cpuLayersForFullBatch} of 48 layers' experts in CPU memory`);
  });

  it("plans the full 32 × 8192 batch when the budget holds it", async () => {
    const plan = await planMemoryForModel(path, { budgetBytes: 60e9, maxSequences: 32, contextSize: 8192 });
    expect([plan.sequences, plan.contextSize]).toEqual([32, 8192]);
    expect(plan.kvCacheBytes).toBe(32 * 8192 * kvPerToken);
    expect(plan.recurrentStateBytes).toBe(32 * recurrentPerSequence);
  });

  it("refuses a budget the weights alone fill, naming the numbers and what to change", async () => {
    const err = await planMemoryForModel(path, { budgetBytes: 48e9, maxSequences: 32, contextSize: 8192 }).catch((e) => e);
    expect(err).toBeInstanceOf(MemoryPlanError);
    expect(err.code).toBe("insufficient_memory");
    expect(err.message).toContain("48.41 GB");
    expect(err.message).toContain("DOCKET_GPU_MEMORY_BYTES 48.00 GB");
    expect(err.message).toMatch(/smaller quantization/);
  });
});
