import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FOUR_BIT_QUANTS, parseQuant, quantizedTypes, T } from "../tools/model/quants.ts";
import { qwen3NextHeader } from "../tools/model/qwen3next-header.ts";
import { modelShape } from "../worker/model-shape.ts";

const GiB = 1024 ** 3;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-quants-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function weights(quant: (typeof FOUR_BIT_QUANTS)[number]): Promise<number> {
  const path = join(dir, `${quant}.gguf`);
  await qwen3NextHeader(quant).writeHeader(path);
  return modelShape(await readGgufFileInfo(path)).modelBytes;
}

describe("4-bit quantizations of Qwen3-Next-80B-A3B, typed by llama.cpp's quantizer rules", () => {
  it("reproduce the published sizes: Q4_K_M 45.08 GiB, IQ4_NL 41.98 GiB", async () => {
    expect((await weights("Q4_K_M")) / GiB).toBeCloseTo(45.08, 2);
    expect((await weights("IQ4_NL")) / GiB).toBeCloseTo(41.98, 2);
  });

  it("list the others largest first, down to IQ4_XS at 39.67 GiB", async () => {
    const sizes = await Promise.all(FOUR_BIT_QUANTS.map(weights));
    expect([...sizes].sort((a, b) => b - a)).toEqual(sizes);
    expect(FOUR_BIT_QUANTS.at(-1)).toBe("IQ4_XS");
    expect(sizes.at(-1)! / GiB).toBeCloseTo(39.67, 2);
  });

  it("give attn_v more bits, keep norms and the router in F32, and fall back when a row does not fill a block", () => {
    const model = { layers: 8, experts: 0, gqa: 8 };
    const tensors = [
      { name: "blk.0.attn_v.weight", dimensions: [512, 128], ggmlType: T.F16 },
      { name: "blk.0.attn_norm.weight", dimensions: [512], ggmlType: 0 },
      { name: "blk.0.ffn_gate_inp.weight", dimensions: [512, 8], ggmlType: 0 },
      { name: "blk.0.ffn_up.weight", dimensions: [96, 512], ggmlType: T.F16 },
      { name: "blk.0.ffn_gate.weight", dimensions: [100, 512], ggmlType: T.F16 },
      { name: "output.weight", dimensions: [512, 1000], ggmlType: T.F16 },
    ];
    // 96 columns: no 256-element IQ4_XS block fits a row, so IQ4_NL (32); 100 columns fit neither: F16
    expect(quantizedTypes(tensors, model, "IQ4_XS")).toEqual([T.Q5_K, 0, 0, T.IQ4_NL, T.F16, T.Q6_K]);
    expect(quantizedTypes(tensors, model, "Q4_K_M")[0]).toBe(T.Q6_K); // first attn_v of one: use_more_bits
  });

  it("read names as users write them", () => {
    expect(parseQuant("q4_k_m")).toBe("Q4_K_M");
    expect(parseQuant("MOSTLY_IQ4_XS")).toBe("IQ4_XS");
    expect(parseQuant("Q8_0")).toBeUndefined();
  });
});
