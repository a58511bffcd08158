/**
 * The generated hybrid model (qwen3next: gated-delta-net recurrent layers + full-attention layers, as the
 * production Qwen3-Next-80B-A3B) against the real engine: node-llama-cpp loads it as hybrid, its context
 * sequences need checkpoints (llama.cpp cannot drop a suffix of a recurrent state), it generates through
 * the ChatML chat wrapper, greedily and reproducibly, and a saved sequence state resumes exactly.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  getLlama,
  type Llama,
  LlamaChatSession,
  LlamaCompletion,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  type Token,
} from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BATCH_MODEL,
  BENCH_MODEL,
  buildDemoVocab,
  demoModelFileName,
  ensureDemoModel,
  HYBRID_TEST_MODEL,
  TEST_MODEL,
} from "../tools/model/demo-model.ts";

const KB = 1024;

describe("hybrid demo model file", () => {
  it("leaves the llama models' cache names as they were", () => {
    expect(demoModelFileName(TEST_MODEL)).toBe("docket-demo-tiny-f16-a1cf3079fd90999d.gguf");
    expect(demoModelFileName(BENCH_MODEL)).toBe("docket-demo-bench-q8_0-4de844b7cb041425.gguf");
    expect(demoModelFileName(BATCH_MODEL)).toBe("docket-demo-batch-f16-2d1ef040f307f123.gguf");
    expect(demoModelFileName({ ...TEST_MODEL, architecture: "llama" })).toBe(demoModelFileName(TEST_MODEL));
    expect(demoModelFileName({ ...HYBRID_TEST_MODEL, experts: 8 })).not.toBe(demoModelFileName(HYBRID_TEST_MODEL));
  });

  it("has the qwen3next metadata and the linear / attention layer layout", async () => {
    const path = await ensureDemoModel(HYBRID_TEST_MODEL);
    const { size } = await stat(path);
    expect(size).toBeLessThan(1024 * KB);
    const info = await readGgufFileInfo(path, { logWarnings: false });
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general?.architecture).toBe("qwen3next");
    expect(md.qwen3next?.block_count).toBe(4);
    expect(md.qwen3next?.full_attention_interval).toBe(4);
    const byName = new Map((info.tensorInfo ?? []).map((t) => [t.name, t.dimensions.map(Number)]));
    for (const i of [0, 1, 2]) {
      expect(byName.get(`blk.${i}.ssm_in.weight`)).toEqual([64, 2 * 32 + 2 * 64]);
      expect(byName.has(`blk.${i}.attn_q.weight`)).toBe(false);
    }
    expect(byName.get("blk.3.attn_q.weight")).toEqual([64, 2 * 64]); // query + gate
    expect(byName.has("blk.3.ssm_in.weight")).toBe(false);
    expect(byName.get("blk.0.ffn_up_exps.weight")).toEqual([64, 32, 4]);
    expect(byName.get("token_embd.weight")).toEqual([64, buildDemoVocab().tokens.length]);
  });
});

describe("hybrid demo model in node-llama-cpp", () => {
  let llama: Llama;
  let model: LlamaModel;
  let tmp: string;
  /** every llama.cpp log line at warn level or above */
  const problems: string[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "docket-hybrid-"));
    llama = await getLlama({
      gpu: false,
      maxThreads: 1,
      logLevel: LlamaLogLevel.warn,
      logger(level, message) {
        if (level === LlamaLogLevel.warn || level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
          problems.push(`[${level}] ${message.trim()}`);
        }
      },
    });
    const started = performance.now();
    model = await llama.loadModel({ modelPath: await ensureDemoModel(HYBRID_TEST_MODEL) });
    console.info(`hybrid model loaded in ${(performance.now() - started).toFixed(0)} ms`);
  });
  afterAll(async () => {
    await model?.dispose();
    await llama?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("loads as a hybrid model without llama.cpp warnings, and its sequences need checkpoints", async () => {
    expect(problems).toEqual([]);
    expect(model.fileInfo.metadata.general.architecture).toBe("qwen3next");
    expect(model.fileInsights.isHybrid).toBe(true);
    expect(model.fileInsights.isRecurrent).toBe(false);
    const context = await model.createContext({ contextSize: 512, threads: 1 });
    try {
      expect(context.getSequence().needsCheckpoints).toBe(true);
    } finally {
      await context.dispose();
    }
  });

  it("generates through a ChatML chat session, greedily the same text twice", async () => {
    const context = await model.createContext({ contextSize: 1024, sequences: 2, threads: 1 });
    try {
      const outputs: string[] = [];
      let tokens = 0;
      const started = performance.now();
      for (let run = 0; run < 2; run++) {
        const contextSequence = context.getSequence();
        const session = new LlamaChatSession({ contextSequence });
        expect(session.chatWrapper.wrapperName).toBe("ChatML");
        outputs.push(
          await session.prompt("Summarize the document in one line.", {
            maxTokens: 24,
            temperature: 0,
            seed: 7,
            onToken: (t) => {
              tokens += t.length;
            },
          }),
        );
        session.dispose();
        await contextSequence.dispose();
      }
      const seconds = (performance.now() - started) / 1000;
      console.info(`hybrid model: ${tokens} tokens in 2 chat prompts, ${(tokens / seconds).toFixed(0)} tok/s (1 thread)`);
      expect(tokens).toBeGreaterThan(0);
      expect(outputs[1]).toBe(outputs[0]);
    } finally {
      await context.dispose();
    }
    expect(problems).toEqual([]);
  });

  it("resumes a saved document-prefix state into another sequence exactly as a fresh evaluation", async () => {
    const context = await model.createContext({ contextSize: 1024, sequences: 3, threads: 1 });
    try {
      const [saver, loader, fresh] = [context.getSequence(), context.getSequence(), context.getSequence()];
      const bos = model.tokens.bos as Token;
      const doc = "the cat and the hat is on the mat, and it was in the house with this dog. ".repeat(8);
      const prefix = [bos, ...model.tokenize(doc)];
      const prompt = [bos, ...model.tokenize(`${doc}\nQuestion: what is on the mat? Answer:`)];
      expect(prompt.slice(0, prefix.length)).toEqual(prefix);

      const greedy = async (sequence: LlamaContextSequence, tokens: Token[]): Promise<Token[]> => {
        const out: Token[] = [];
        for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
          out.push(token);
          if (out.length >= 16) break;
        }
        return out;
      };
      const expected = await greedy(fresh, prompt);

      await saver.evaluateWithoutGeneratingNewTokens(prefix);
      const file = join(tmp, "prefix.state");
      const { fileSize } = await saver.saveStateToFile(file);
      console.info(`hybrid model: state of ${prefix.length} tokens is ${fileSize} bytes`);
      await loader.loadStateFromFile(file, { acceptRisk: true });
      expect(loader.contextTokens).toEqual(prefix);
      expect(await greedy(loader, prompt.slice(prefix.length))).toEqual(expected);

      // LlamaCompletion (which prepends BOS itself) reuses the loaded prefix: it evaluates only the rest
      await loader.loadStateFromFile(file, { acceptRisk: true });
      const evaluated = () => loader.tokenMeter.usedInputTokens + loader.tokenMeter.usedOutputTokens;
      const before = evaluated();
      const completion = new LlamaCompletion({ contextSequence: loader });
      const generated: Token[] = [];
      await completion.generateCompletion(prompt.slice(1), {
        maxTokens: 8,
        temperature: 0,
        repeatPenalty: false,
        onToken: (t) => generated.push(...t),
      });
      completion.dispose();
      expect(generated).toEqual(expected.slice(0, generated.length));
      expect(evaluated() - before).toBeLessThanOrEqual(prompt.length - prefix.length + 8);
    } finally {
      await context.dispose();
    }
    expect(problems).toEqual([]);
  });
});
