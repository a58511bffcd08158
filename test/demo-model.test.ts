/**
 * The random-weight demo GGUF models are the fixture for every LLM-dependent test, so this
 * exercises them against the real engine (node-llama-cpp / llama.cpp on CPU, no mocks).
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  getLlama,
  type Llama,
  LlamaChatSession,
  LlamaCompletion,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  type Token,
} from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BENCH_MODEL,
  buildDemoVocab,
  demoModelFileName,
  ensureDemoModel,
  TEST_MODEL,
  writeDemoModel,
} from "../tools/model/demo-model.ts";
import {
  dequantizeQ8_0,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  GgmlType,
  GgufWriter,
  quantizeQ8_0,
} from "../tools/model/gguf-writer.ts";

const KB = 1024;
const MB = 1024 * 1024;

async function sha256(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "docket-demo-model-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("gguf-writer", () => {
  it("converts f32 -> f16 with round-to-nearest-even", () => {
    expect(float32ToFloat16Bits(0)).toBe(0x0000);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    for (const v of [0.1, -3.5, 1e-5, 123.456]) {
      expect(Math.abs(float16BitsToFloat32(float32ToFloat16Bits(v)) - v)).toBeLessThan(Math.abs(v) * 1e-3 + 1e-7);
    }
  });

  it("quantizes Q8_0 in 34-byte blocks with bounded error", () => {
    const values = new Float32Array(64).map((_, i) => Math.sin(i) * (i < 32 ? 1 : 0.01));
    const q = quantizeQ8_0(values);
    expect(q.length).toBe(2 * 34);
    const back = dequantizeQ8_0(q);
    for (let i = 0; i < 64; i++) {
      const scale = i < 32 ? 1 : 0.01;
      expect(Math.abs(back[i]! - values[i]!)).toBeLessThanOrEqual((scale / 127) * 0.51 + 1e-6);
    }
    // the largest |x| of a block maps to ±127
    const view = new DataView(q.buffer);
    const block0 = Array.from({ length: 32 }, (_, i) => view.getInt8(2 + i));
    expect(Math.max(...block0.map(Math.abs))).toBe(127);
    expect(() => quantizeQ8_0(new Float32Array(31))).toThrow();
  });

  it("writes a parseable GGUF v3 file with aligned tensor data", async () => {
    const path = join(tmp, "small.gguf");
    const w = new GgufWriter();
    w.addString("general.architecture", "test")
      .addUint32("u", 7)
      .addInt32("i", -3)
      .addFloat32("f", 0.5)
      .addBool("b", true)
      .addStringArray("sa", ["a", "ü", ""])
      .addInt32Array("ia", [1, -2])
      .addUint32Array("ua", [3, 4])
      .addFloat32Array("fa", [0.25])
      .addTensor("t32", [3], GgmlType.F32, new Float32Array([1, 2, 3]))
      .addTensor("t16", [5, 2], GgmlType.F16, () => new Float32Array(10).fill(0.5))
      .addTensor("tq8", [32, 3], GgmlType.Q8_0, () => new Float32Array(96).fill(-1));
    const written = await w.write(path);
    const bytes = await readFile(path);
    expect(bytes.length).toBe(written);
    expect(bytes.length).toBe(w.byteLength);
    expect(bytes.length % 32).toBe(0);
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(bytes.readUInt32LE(4)).toBe(3);

    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.version).toBe(3);
    const md = info.metadata as unknown as Record<string, unknown>;
    expect(md.u).toBe(7);
    expect(md.i).toBe(-3);
    expect(md.f).toBe(0.5);
    expect(md.b).toBe(true);
    expect(md.sa).toEqual(["a", "ü", ""]);
    expect(md.ia).toEqual([1, -2]);
    expect(md.ua).toEqual([3, 4]);
    expect(md.fa).toEqual([0.25]);
    expect((md.general as Record<string, unknown>).alignment).toBe(32);
    const tensors = info.tensorInfo ?? [];
    expect(tensors.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType])).toEqual([
      ["t32", [3], 0],
      ["t16", [5, 2], 1],
      ["tq8", [32, 3], 8],
    ]);
    for (const t of tensors) expect(Number(t.offset) % 32).toBe(0);
    // data section starts at an aligned position; check the raw f32 tensor
    const dataStart = bytes.length - (32 + 32 + 128); // t32 (12 -> 32) + t16 (20 -> 32) + tq8 (3 * 34 = 102 -> 128)
    expect(dataStart % 32).toBe(0);
    expect(
      Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset + dataStart, bytes.byteOffset + dataStart + 12))),
    ).toEqual([1, 2, 3]);
  });
});

describe("demo model files", () => {
  it("is deterministic for a seed and differs across seeds", async () => {
    const a = join(tmp, "a.gguf");
    const b = join(tmp, "b.gguf");
    const c = join(tmp, "c.gguf");
    await writeDemoModel(a, TEST_MODEL);
    await writeDemoModel(b, TEST_MODEL);
    await writeDemoModel(c, { ...TEST_MODEL, seed: 2 });
    expect(await sha256(a)).toBe(await sha256(b));
    expect(await sha256(a)).not.toBe(await sha256(c));
    const { size } = await stat(a);
    expect(size).toBeGreaterThan(150 * KB);
    expect(size).toBeLessThan(800 * KB);
  });

  it("has the llama metadata and tensor layout llama.cpp expects", async () => {
    const path = await ensureDemoModel(TEST_MODEL);
    const info = await readGgufFileInfo(path, { logWarnings: false });
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general?.architecture).toBe("llama");
    expect(md.general?.name).toBe("docket-demo-tiny");
    expect(md.general?.file_type).toBe(1); // MOSTLY_F16
    expect(md.llama?.context_length).toBe(4096);
    expect(md.llama?.embedding_length).toBe(64);
    expect(md.llama?.block_count).toBe(2);
    const vocab = buildDemoVocab();
    const byName = new Map((info.tensorInfo ?? []).map((t) => [t.name, t]));
    expect(byName.size).toBe(3 + 9 * 2);
    expect(byName.get("token_embd.weight")?.dimensions.map(Number)).toEqual([64, vocab.tokens.length]);
    expect(byName.get("output.weight")?.dimensions.map(Number)).toEqual([64, vocab.tokens.length]);
    expect(byName.get("blk.1.attn_q.weight")?.dimensions.map(Number)).toEqual([64, 64]);
    expect(byName.get("blk.1.ffn_up.weight")?.dimensions.map(Number)).toEqual([64, 192]);
    expect(byName.get("blk.1.ffn_down.weight")?.dimensions.map(Number)).toEqual([192, 64]);
    expect(byName.get("blk.0.attn_norm.weight")?.ggmlType).toBe(0);
    expect(byName.get("blk.0.ffn_gate.weight")?.ggmlType).toBe(1);
  });

  it("caches by option hash and survives concurrent ensureDemoModel calls", async () => {
    const dir = join(tmp, "cache");
    const opts = { ...TEST_MODEL, seed: 42 };
    const paths = await Promise.all([ensureDemoModel(opts, dir), ensureDemoModel(opts, dir), ensureDemoModel(opts, dir)]);
    expect(new Set(paths).size).toBe(1);
    expect(paths[0]).toBe(join(dir, demoModelFileName(opts)));
    const first = await stat(paths[0]!);
    expect(await ensureDemoModel(opts, dir)).toBe(paths[0]); // no regeneration
    expect((await stat(paths[0]!)).mtimeMs).toBe(first.mtimeMs);
    expect(demoModelFileName(opts)).not.toBe(demoModelFileName(TEST_MODEL));
    expect(demoModelFileName({ ...TEST_MODEL })).toBe(demoModelFileName(TEST_MODEL));
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("demo model in node-llama-cpp", () => {
  let llama: Llama;
  let model: LlamaModel;
  /** every llama.cpp log line at warn level or above */
  const problems: string[] = [];

  beforeAll(async () => {
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
    model = await llama.loadModel({ modelPath: await ensureDemoModel(TEST_MODEL) });
    console.info(`tiny model loaded in ${(performance.now() - started).toFixed(0)} ms`);
  });
  afterAll(async () => {
    await model?.dispose();
    await llama?.dispose();
  });

  it("loads without any llama.cpp warnings", () => {
    expect(problems).toEqual([]);
    expect(model.fileInfo.metadata.general.architecture).toBe("llama");
    expect(model.trainContextSize).toBe(4096);
  });

  it("has sane special tokens", () => {
    const vocab = buildDemoVocab();
    expect(model.tokens.bos).toBe(vocab.bos);
    expect(model.tokens.eos).toBe(vocab.imEnd);
    expect(model.tokens.nl).toBe(3 + 0x0a); // <0x0A>
    expect(model.isEogToken(vocab.imEnd as Token)).toBe(true);
    expect(model.isEogToken(vocab.imStart as Token)).toBe(false);
    expect(model.tokenize("<|im_end|>", true)).toEqual([vocab.imEnd]);
    expect(model.tokenize("<|im_end|>", false).length).toBeGreaterThan(1);
  });

  it("round-trips arbitrary UTF-8 through tokenize/detokenize", () => {
    for (const text of [
      "Größe – 東京",
      "the cat and the hat",
      " leading space, trailing space ",
      "emoji 🦙🚀 and\nnew\tlines\r\n",
      "Ωμέγα ، مرحبا , привет",
    ]) {
      const tokens = model.tokenize(text);
      expect(tokens.length).toBeGreaterThan(0);
      expect(model.detokenize(tokens)).toBe(text);
    }
    // normal (merged) SentencePiece tokens are used for common English, bytes only as fallback
    expect(model.tokenize(" the")).toHaveLength(1);
    expect(model.tokenize(" and the")).toHaveLength(2);
    expect(model.tokenize("東")).toHaveLength(3); // 3 UTF-8 byte tokens
  });

  it("generates with chat sessions on two parallel sequences", async () => {
    const context = await model.createContext({ contextSize: 4096, sequences: 2, threads: 1 });
    try {
      const seqs = [context.getSequence(), context.getSequence()];
      const sessions = seqs.map((contextSequence) => new LlamaChatSession({ contextSequence }));
      expect(sessions[0]!.chatWrapper.wrapperName).toBe("ChatML");
      const counts = [0, 0];
      const started = performance.now();
      const outputs = await Promise.all(
        sessions.map((s, i) =>
          s.prompt(`Hello from sequence ${i}`, {
            maxTokens: 48,
            temperature: 0.8,
            seed: i,
            onToken: (t) => {
              counts[i]! += t.length;
            },
          }),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      console.info(
        `tiny model: ${counts.join("+")} tokens on 2 sequences, ${((counts[0]! + counts[1]!) / seconds).toFixed(0)} tok/s`,
      );
      for (const [i, out] of outputs.entries()) {
        expect(typeof out).toBe("string");
        expect(counts[i]).toBeGreaterThan(0);
      }
      for (const s of sessions) s.dispose();
      for (const s of seqs) await s.dispose();
    } finally {
      await context.dispose();
    }
    expect(problems).toEqual([]);
  });

  it("completes text deterministically with LlamaCompletion", async () => {
    const context = await model.createContext({ contextSize: 1024, threads: 1 });
    try {
      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      const a = await completion.generateCompletion("Once upon a time", { maxTokens: 16, temperature: 0 });
      await sequence.clearHistory();
      const b = await completion.generateCompletion("Once upon a time", { maxTokens: 16, temperature: 0 });
      expect(a).toBe(b);
      completion.dispose();
      await sequence.dispose();
    } finally {
      await context.dispose();
    }
  });

  it("follows a JSON-schema grammar", async () => {
    const context = await model.createContext({ contextSize: 1024, threads: 1 });
    try {
      const sequence = context.getSequence();
      const session = new LlamaChatSession({ contextSequence: sequence });
      const grammar = await llama.createGrammarForJsonSchema({
        type: "object",
        properties: { a: { type: "string", maxLength: 8 } },
        required: ["a"],
      } as const);
      for (const seed of [1, 7]) {
        await sequence.clearHistory();
        session.resetChatHistory();
        const out = await session.prompt("Reply with JSON", { grammar, maxTokens: 200, seed, temperature: 0.8 });
        // Always valid JSON of the right shape. We use JSON.parse rather than grammar.parse():
        // llama.cpp's grammar counts one UTF-8 *sequence* per character without validating
        // continuation bytes, so a random model can emit e.g. F0 80 80 80 as one "char" that
        // decodes to 4 x U+FFFD, which then fails node-llama-cpp's maxLength validation (seed 7).
        const parsed = JSON.parse(out) as unknown;
        expect(parsed).toEqual({ a: expect.any(String) });
        const a = (parsed as { a: string }).a;
        expect([...a].length).toBeLessThanOrEqual(8 * 4);
        if (!a.includes("\uFFFD")) expect(grammar.parse(out)).toEqual(parsed);
      }
      session.dispose();
      await sequence.dispose();
    } finally {
      await context.dispose();
    }
  });

  it("bench model: q8_0, tens of MB, loads cleanly and generates", async () => {
    let started = performance.now();
    const path = await ensureDemoModel(BENCH_MODEL);
    const genMs = performance.now() - started;
    const { size } = await stat(path);
    expect(size).toBeGreaterThan(15 * MB);
    expect(size).toBeLessThan(60 * MB);
    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.metadata.general.file_type).toBe(7); // MOSTLY_Q8_0
    expect(info.tensorInfo?.find((t) => t.name === "blk.0.ffn_down.weight")?.ggmlType).toBe(8);

    started = performance.now();
    const bench = await llama.loadModel({ modelPath: path });
    const loadMs = performance.now() - started;
    try {
      const context = await bench.createContext({ contextSize: 4096, threads: 1 });
      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      let tokens = 0;
      started = performance.now();
      await completion.generateCompletion("The quick brown fox", {
        maxTokens: 64,
        temperature: 0.8,
        seed: 1,
        onToken: (t) => {
          tokens += t.length;
        },
      });
      const seconds = (performance.now() - started) / 1000;
      console.info(
        `bench model: ${(size / MB).toFixed(1)} MiB, ensure ${genMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms, ${tokens} tokens at ${(tokens / seconds).toFixed(0)} tok/s (1 thread)`,
      );
      expect(tokens).toBeGreaterThan(0);
      completion.dispose();
      await sequence.dispose();
      await context.dispose();
    } finally {
      await bench.dispose();
    }
    expect(problems).toEqual([]);
  });
});
