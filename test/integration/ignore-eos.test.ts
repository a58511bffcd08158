import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { BENCH_MODEL, ensureDemoModel } from "../../tools/model/demo-model.ts";
import { Engine } from "../../worker/engine.ts";
import { summarize } from "../../worker/tasks/summarize.ts";

// Sampled (seeded) answers of the benchmark model end early on its end of turn now and then: the case ignoreEos exists for.
let engine: Engine;
beforeAll(async () => {
  const modelPath = await ensureDemoModel(BENCH_MODEL);
  engine = await Engine.load({
    modelPath,
    gpu: false,
    threads: 1,
    sequences: 1,
    contextSize: 1024,
    log: createLogger("test", "silent"),
  });
});
afterAll(() => engine?.close());

async function completionTokens(ignoreEos: boolean): Promise<number[]> {
  const counts: number[] = [];
  for (let i = 0; i < 6; i++) {
    const job = {
      v: 1 as const,
      id: `j${i}`,
      lane: "batch" as const,
      task: "summarize" as const,
      input: {},
      params: {},
      submittedAt: "",
    };
    const plan = summarize.build({
      job,
      document: `Document ${i}. This services agreement is made between Northwind Clinic and Contoso Legal.`,
    });
    const out = await engine.generate({
      systemPrompt: plan.systemPrompt,
      prompt: plan.prompt,
      maxTokens: 48,
      seed: i,
      temperature: 1.5,
      ignoreEos,
    });
    counts.push(out.completionTokens);
  }
  return counts;
}

describe("ignoreEos", () => {
  it("a model that stops early on its own runs every answer to maxTokens when end-of-generation tokens are ignored", async () => {
    expect((await completionTokens(false)).some((n) => n < 48)).toBe(true);
    expect(await completionTokens(true)).toEqual([48, 48, 48, 48, 48, 48]);
  });
});
