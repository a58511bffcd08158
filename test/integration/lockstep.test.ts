import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { ensureDemoModel } from "../../tools/model/demo-model.ts";
import { Engine } from "../../worker/engine.ts";

const engines: Engine[] = [];
afterAll(() => Promise.all(engines.map((e) => e.close())));

/** Four jobs of equal length generating at once on the real engine: the sequences each decode step carried, on average. */
async function meanStep(lockstepMs: number): Promise<number> {
  const engine = await Engine.load({
    modelPath: await ensureDemoModel(),
    gpu: false,
    threads: 1,
    sequences: 4,
    contextSize: 512,
    lockstepMs,
    log: createLogger("test", "silent"),
  });
  engines.push(engine);
  const out = await Promise.all(
    [0, 1, 2, 3].map((i) =>
      engine.generate({ prompt: `Contract ${i}: rent is due monthly.`, maxTokens: 40, seed: i, ignoreEos: true }),
    ),
  );
  expect(out.map((o) => o.completionTokens)).toEqual([40, 40, 40, 40]);
  return engine.steps.items / engine.steps.steps;
}

describe("decode steps in lockstep", () => {
  it("four sequences generating together decode in the same steps: none trails a step behind", async () => {
    // Measured: every step carried all 4 (49 steps: the prompts' and 40 tokens). With DOCKET_LOCKSTEP_MS=0, as
    // node-llama-cpp's decode loop leaves them, one sequence trailed a step behind the others: 3.16 on average.
    expect(await meanStep(2)).toBeGreaterThan(3.6);
  });
});

describe("sequence operations between decode steps", () => {
  it("a finished job's sequence is trimmed and takes the next job while other jobs still generate", async () => {
    const dir = await mkdtemp(join(tmpdir(), "docket-gate-"));
    const engine = await Engine.load({
      modelPath: await ensureDemoModel(),
      gpu: false,
      threads: 1,
      sequences: 3,
      contextSize: 512,
      prefixCache: { reuse: true, dir, budgetBytes: 64 * 1024 * 1024 },
      log: createLogger("test", "silent"),
    });
    engines.push(engine);
    const job = (doc: string, question: string) => {
      const systemPrompt = "You analyse documents.";
      const head = `<document>\n${doc}\n</document>`;
      return { systemPrompt, prompt: `${head}\n\n${question}`, shared: { systemPrompt, prompt: head } };
    };
    const generated = [0, 0];
    let started!: () => void;
    const generating = new Promise<void>((r) => (started = r));
    const long = [0, 1].map((i) =>
      engine.generate({
        ...job(`Lease ${i}: the tenant pays rent monthly and keeps the premises in good repair.`, "Summarize."),
        maxTokens: 200,
        seed: i,
        ignoreEos: true,
        onTokens: (n) => {
          generated[i] = n;
          if (n >= 5) started();
        },
      }),
    );
    await generating;
    // Short jobs one after the other on the third sequence: each erases what the last one left and checkpoints its
    // document prefix, and both take node-llama-cpp's context lock, which its decode loop holds while the two long jobs
    // generate. Without the gate these waited for the long jobs to end (all short jobs done at 200 tokens).
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const short = await engine.generate({
        ...job(`Invoice ${i}: 1,200 EUR due within 30 days of delivery to the clinic.`, "Who pays?"),
        maxTokens: 4,
        seed: i,
        ignoreEos: true,
      });
      expect(short.completionTokens).toBe(4);
      seen.push(Math.max(...generated));
    }
    expect(seen.at(-1)).toBeLessThan(150);
    expect((await Promise.all(long)).map((r) => r.completionTokens)).toEqual([200, 200]);
    await rm(dir, { recursive: true, force: true });
  });
});
