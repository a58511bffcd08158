/**
 * Deterministic random-weight GGUF models used as test / benchmark fixtures.
 *
 * The weights are noise, so the text is gibberish, but the file is a fully valid llama.cpp
 * model: real tensors, real byte-level SentencePiece vocab (every UTF-8 string tokenizes and
 * round-trips through byte fallback), ChatML control tokens + chat template, and a vocab
 * configuration that loads without any tokenizer warnings.
 *
 * Two architectures: "llama" (plain transformer, the default) and "qwen3next", the hybrid of the
 * production model Qwen3-Next-80B-A3B (gated-delta-net recurrent layers, every
 * `fullAttentionInterval`-th layer full attention, MoE FFN with a shared expert). llama.cpp keeps a
 * recurrent state for the linear layers, which cannot drop a suffix, so a qwen3next context sequence
 * `needsCheckpoints` in node-llama-cpp; the fixture for prefix reuse on such models.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType, GgufWriter, LlamaFileType, Q8_0_BLOCK_SIZE } from "./gguf-writer.ts";

export type DemoModelQuantization = "f32" | "f16" | "q8_0";

export type DemoModelArchitecture = "llama" | "qwen3next";

export interface DemoModelOptions {
  /** PRNG seed; same options => byte-identical file. Default 1. */
  seed?: number;
  /** n_embd. Default 64. */
  embedding?: number;
  /** n_layer (block_count). Default 2. */
  layers?: number;
  /** n_head. Default 4. */
  heads?: number;
  /** n_head_kv (GQA). Default = heads. */
  headsKv?: number;
  /** n_ff. Default 192. */
  feedForward?: number;
  /** llama.context_length (n_ctx_train). Default 4096. */
  contextLength?: number;
  /** Storage type of the 2D weight matrices (norms are always F32). Default "f16". */
  quantization?: DemoModelQuantization;
  /** general.name. Default "docket-demo". */
  name?: string;
  /**
   * general.architecture. Default "llama". "qwen3next" is hybrid: layer i is full attention when
   * (i + 1) % fullAttentionInterval == 0, gated delta net otherwise; every FFN is MoE + a shared expert
   * of size `feedForward`. Attention head size is embedding / heads (as for llama), with a query gate.
   */
  architecture?: DemoModelArchitecture;
  /** qwen3next: qwen3next.full_attention_interval. Default 4 (as Qwen3-Next: 3 linear layers, then 1 attention). */
  fullAttentionInterval?: number;
  /** qwen3next: expert_count. Default 4. */
  experts?: number;
  /** qwen3next: expert_used_count. Default 2. */
  expertsUsed?: number;
  /** qwen3next: expert_feed_forward_length. Default 32. */
  expertFeedForward?: number;
  /** qwen3next: ssm.group_count (linear key heads). Default 2. */
  linearKeyHeads?: number;
  /** qwen3next: ssm.time_step_rank (linear value heads, a multiple of linearKeyHeads). Default 4. */
  linearValueHeads?: number;
  /** qwen3next: ssm.state_size (head size of linear keys and values). Default 16. */
  linearHeadDim?: number;
  /** qwen3next: ssm.conv_kernel. Default 4. */
  convKernel?: number;
}

export type ResolvedDemoModelOptions = Required<DemoModelOptions>;

/**
 * The options a llama model's hash covers: those that existed before `architecture`, so every llama
 * file keeps its name and bytes. The qwen3next-only options only enter a qwen3next model's hash.
 */
const LLAMA_OPTION_KEYS = [
  "seed",
  "embedding",
  "layers",
  "heads",
  "headsKv",
  "feedForward",
  "contextLength",
  "quantization",
  "name",
] as const satisfies readonly (keyof ResolvedDemoModelOptions)[];

/** Tiny model for unit tests: ~0.3 MB, f16, loads in milliseconds. */
export const TEST_MODEL: DemoModelOptions = Object.freeze({
  seed: 1,
  embedding: 64,
  layers: 2,
  heads: 4,
  headsKv: 4,
  feedForward: 192,
  contextLength: 4096,
  quantization: "f16",
  name: "docket-demo-tiny",
});

/** Larger model for benchmarks: ~27 MB, q8_0, 8 layers, GQA. */
export const BENCH_MODEL: DemoModelOptions = Object.freeze({
  seed: 1,
  embedding: 512,
  layers: 8,
  heads: 8,
  headsKv: 4,
  feedForward: 1408,
  contextLength: 4096,
  quantization: "q8_0",
  name: "docket-demo-bench",
});

/**
 * The model meant to show batching paying on a CPU, as it does on the target GPU: f16 weights (~55 MB), several
 * sequences decoded together sharing each pass over the weights. On the VM where issue 9 was filed the raw engine
 * ran 1.8× faster at 4 sequences than at 1; on the 2-core VMs since, 1.01-1.07× with the task's prompt, because
 * llama.cpp's f16 kernels are bound by one core's arithmetic there (docs/benchmarks.md has the profile and the
 * shapes tried). `npm run bench:worker` prints the ratio it measures.
 */
export const BATCH_MODEL: DemoModelOptions = Object.freeze({
  seed: 1,
  embedding: 512,
  layers: 8,
  heads: 8,
  headsKv: 8,
  feedForward: 1536,
  contextLength: 4096,
  quantization: "f16",
  name: "docket-demo-batch",
});

/**
 * Tiny hybrid (qwen3next) model for tests of recurrent-state handling: 4 layers (3 gated delta net,
 * 1 attention), 4 experts of which 2 are used, f16: ~0.55 MB, loads in milliseconds.
 */
export const HYBRID_TEST_MODEL: DemoModelOptions = Object.freeze({
  architecture: "qwen3next",
  seed: 1,
  embedding: 64,
  layers: 4,
  heads: 4,
  headsKv: 2,
  feedForward: 64,
  contextLength: 4096,
  quantization: "f16",
  name: "docket-demo-hybrid",
  fullAttentionInterval: 4,
  experts: 4,
  expertsUsed: 2,
  expertFeedForward: 32,
  linearKeyHeads: 2,
  linearValueHeads: 4,
  linearHeadDim: 16,
  convKernel: 4,
});

/** Bump when the generated bytes change for the same options (invalidates cached files). */
export const DEMO_MODEL_GENERATOR_VERSION = 2;

export const DEFAULT_MODEL_CACHE_DIR = fileURLToPath(new URL("../../.cache/models/", import.meta.url));

export function resolveDemoModelOptions(options: DemoModelOptions = {}): ResolvedDemoModelOptions {
  const heads = options.heads ?? 4;
  const r: ResolvedDemoModelOptions = {
    seed: options.seed ?? 1,
    embedding: options.embedding ?? 64,
    layers: options.layers ?? 2,
    heads,
    headsKv: options.headsKv ?? heads,
    feedForward: options.feedForward ?? 192,
    contextLength: options.contextLength ?? 4096,
    quantization: options.quantization ?? "f16",
    name: options.name ?? "docket-demo",
    architecture: options.architecture ?? "llama",
    fullAttentionInterval: options.fullAttentionInterval ?? 4,
    experts: options.experts ?? 4,
    expertsUsed: options.expertsUsed ?? 2,
    expertFeedForward: options.expertFeedForward ?? 32,
    linearKeyHeads: options.linearKeyHeads ?? 2,
    linearValueHeads: options.linearValueHeads ?? 4,
    linearHeadDim: options.linearHeadDim ?? 16,
    convKernel: options.convKernel ?? 4,
  };
  const positiveInts: (keyof ResolvedDemoModelOptions)[] = [
    "embedding",
    "layers",
    "heads",
    "headsKv",
    "feedForward",
    "contextLength",
    "fullAttentionInterval",
    "experts",
    "expertsUsed",
    "expertFeedForward",
    "linearKeyHeads",
    "linearValueHeads",
    "linearHeadDim",
    "convKernel",
  ];
  for (const k of positiveInts) {
    const v = r[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new Error(`demo model: ${k} must be a positive integer`);
  }
  if (!Number.isInteger(r.seed)) throw new Error("demo model: seed must be an integer");
  if (r.embedding % r.heads !== 0) throw new Error("demo model: embedding must be divisible by heads");
  if (r.heads % r.headsKv !== 0) throw new Error("demo model: heads must be divisible by headsKv");
  if ((r.embedding / r.heads) % 2 !== 0) throw new Error("demo model: head dimension must be even (RoPE)");
  if (!["f32", "f16", "q8_0"].includes(r.quantization)) throw new Error(`demo model: bad quantization ${r.quantization}`);
  if (r.quantization === "q8_0" && r.embedding % Q8_0_BLOCK_SIZE !== 0) {
    throw new Error(`demo model: q8_0 needs embedding % ${Q8_0_BLOCK_SIZE} == 0`);
  }
  if (r.architecture === "qwen3next") {
    // partial RoPE as Qwen3-Next: a quarter of the head, which must stay even
    if ((r.embedding / r.heads) % 8 !== 0) throw new Error("demo model: qwen3next head dimension must be a multiple of 8");
    if (r.expertsUsed > r.experts) throw new Error("demo model: expertsUsed must be <= experts");
    if (r.linearValueHeads % r.linearKeyHeads !== 0) {
      throw new Error("demo model: linearValueHeads must be a multiple of linearKeyHeads");
    }
    if (r.fullAttentionInterval > r.layers) throw new Error("demo model: qwen3next needs at least one attention layer");
  } else if (r.architecture !== "llama") {
    throw new Error(`demo model: bad architecture ${r.architecture}`);
  }
  return r;
}

// ---------------------------------------------------------------------------
// tokenizer

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface DemoVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  unk: number;
  bos: number;
  eos: number;
  imStart: number;
  imEnd: number;
}

/**
 * Whole words (with the SentencePiece "▁" space marker) that get their own tokens. Every prefix
 * ("▁t", "▁th", "▁the") is a token too, so the SPM bigram merge can always reach the full word;
 * all multi-char pieces start with "▁", so merges never compete inside a word.
 */
const WORDS = ["the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "on", "as", "was", "be", "this"];

function wordPieces(): string[] {
  const pieces: string[] = [];
  for (const word of WORDS) {
    const w = `▁${word}`;
    for (let end = 2; end <= w.length; end++) {
      const piece = w.slice(0, end);
      if (!pieces.includes(piece)) pieces.push(piece);
    }
  }
  return pieces;
}

export function buildDemoVocab(): DemoVocab {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const add = (text: string, type: number, score = 0): number => {
    tokens.push(text);
    scores.push(score);
    types.push(type);
    return tokens.length - 1;
  };
  const unk = add("<unk>", TOKEN_TYPE.UNKNOWN);
  const bos = add("<s>", TOKEN_TYPE.CONTROL);
  add("</s>", TOKEN_TYPE.CONTROL); // auto-detected by llama.cpp as an extra end-of-generation token
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, TOKEN_TYPE.BYTE);
  const imStart = add("<|im_start|>", TOKEN_TYPE.CONTROL);
  const imEnd = add("<|im_end|>", TOKEN_TYPE.CONTROL);
  // normal tokens: higher score = preferred merge in the SPM tokenizer
  let score = -1;
  for (const piece of wordPieces()) add(piece, TOKEN_TYPE.NORMAL, score--);
  add("▁", TOKEN_TYPE.NORMAL, score--);
  for (let c = 0x21; c <= 0x7e; c++) add(String.fromCharCode(c), TOKEN_TYPE.NORMAL, score--);
  return { tokens, scores, types, unk, bos, eos: imEnd, imStart, imEnd };
}

// ---------------------------------------------------------------------------
// deterministic weights

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast, deterministic 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform(-a, a) with a = sqrt(3 / fanIn) * gain, i.e. std = gain / sqrt(fanIn). Seeded by (seed, tensor name). */
function randomTensor(seed: number, name: string, count: number, fanIn: number, gain = 1): () => Float32Array {
  return () => {
    const rnd = mulberry32((fnv1a(name) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
    const a = Math.sqrt(3 / fanIn) * gain;
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = (rnd() * 2 - 1) * a;
    return out;
  };
}

function ones(count: number): Float32Array {
  return new Float32Array(count).fill(1);
}

// ---------------------------------------------------------------------------
// model

const FILE_TYPE: Record<DemoModelQuantization, LlamaFileType> = {
  f32: LlamaFileType.ALL_F32,
  f16: LlamaFileType.MOSTLY_F16,
  q8_0: LlamaFileType.MOSTLY_Q8_0,
};
const MATRIX_TYPE: Record<DemoModelQuantization, GgmlType> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
};

export function buildDemoModel(options: DemoModelOptions = {}): GgufWriter {
  const o = resolveDemoModelOptions(options);
  return o.architecture === "qwen3next" ? buildQwen3Next(o) : buildLlama(o);
}

function addGeneral(w: GgufWriter, o: ResolvedDemoModelOptions): void {
  w.addString("general.architecture", o.architecture);
  w.addString("general.name", o.name);
  w.addUint32("general.file_type", FILE_TYPE[o.quantization]);
  if (o.quantization === "q8_0") w.addUint32("general.quantization_version", 2);
}

/** The same tokenizer and chat template for every architecture, so prompts render and tokenize alike. */
function addTokenizer(w: GgufWriter, vocab: DemoVocab): void {
  w.addString("tokenizer.ggml.model", "llama");
  w.addStringArray("tokenizer.ggml.tokens", vocab.tokens);
  w.addFloat32Array("tokenizer.ggml.scores", vocab.scores);
  w.addInt32Array("tokenizer.ggml.token_type", vocab.types);
  w.addUint32("tokenizer.ggml.bos_token_id", vocab.bos);
  w.addUint32("tokenizer.ggml.eos_token_id", vocab.eos);
  w.addUint32("tokenizer.ggml.unknown_token_id", vocab.unk);
  w.addUint32("tokenizer.ggml.padding_token_id", vocab.unk);
  w.addBool("tokenizer.ggml.add_bos_token", true);
  w.addBool("tokenizer.ggml.add_eos_token", false);
  w.addBool("tokenizer.ggml.add_space_prefix", false);
  w.addString("tokenizer.chat_template", CHATML_TEMPLATE);
}

/** Random-weight tensor helpers bound to a writer and the model's seed and storage type. */
function tensorHelpers(w: GgufWriter, o: ResolvedDemoModelOptions) {
  // 2D matrices: q8_0 needs ne[0] % 32 == 0; fall back to f16 for rows that don't fit.
  const matType = (ne0: number): GgmlType =>
    o.quantization === "q8_0" && ne0 % Q8_0_BLOCK_SIZE !== 0 ? GgmlType.F16 : MATRIX_TYPE[o.quantization];
  /** A weight matrix (or a stack of them, dims[2] = experts) with fan-in dims[0]. */
  const matrix = (name: string, ne0: number, ne1: number, gain = 1, ne2 = 1): void => {
    const dims = ne2 === 1 ? [ne0, ne1] : [ne0, ne1, ne2];
    w.addTensor(name, dims, matType(ne0), randomTensor(o.seed, name, ne0 * ne1 * ne2, ne0, gain));
  };
  const norm = (name: string, n: number): void => {
    w.addTensor(name, [n], GgmlType.F32, ones(n));
  };
  return { matType, matrix, norm };
}

function buildLlama(o: ResolvedDemoModelOptions): GgufWriter {
  const vocab = buildDemoVocab();
  const nVocab = vocab.tokens.length;
  const headDim = o.embedding / o.heads;
  const nEmbdKv = headDim * o.headsKv;
  const w = new GgufWriter();

  addGeneral(w, o);

  w.addUint32("llama.vocab_size", nVocab);
  w.addUint32("llama.context_length", o.contextLength);
  w.addUint32("llama.embedding_length", o.embedding);
  w.addUint32("llama.block_count", o.layers);
  w.addUint32("llama.feed_forward_length", o.feedForward);
  w.addUint32("llama.attention.head_count", o.heads);
  w.addUint32("llama.attention.head_count_kv", o.headsKv);
  w.addUint32("llama.rope.dimension_count", headDim);
  w.addFloat32("llama.rope.freq_base", 10000);
  w.addFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5);

  addTokenizer(w, vocab);

  const { matType, matrix, norm } = tensorHelpers(w, o);

  // token embeddings: unit-variance rows (fan-in 1 for a lookup table)
  w.addTensor(
    "token_embd.weight",
    [o.embedding, nVocab],
    matType(o.embedding),
    randomTensor(o.seed, "token_embd.weight", o.embedding * nVocab, 1),
  );
  for (let i = 0; i < o.layers; i++) {
    const p = `blk.${i}.`;
    norm(`${p}attn_norm.weight`, o.embedding);
    matrix(`${p}attn_q.weight`, o.embedding, o.embedding);
    matrix(`${p}attn_k.weight`, o.embedding, nEmbdKv);
    matrix(`${p}attn_v.weight`, o.embedding, nEmbdKv);
    matrix(`${p}attn_output.weight`, o.embedding, o.embedding, 0.5);
    norm(`${p}ffn_norm.weight`, o.embedding);
    matrix(`${p}ffn_gate.weight`, o.embedding, o.feedForward);
    matrix(`${p}ffn_up.weight`, o.embedding, o.feedForward);
    matrix(`${p}ffn_down.weight`, o.feedForward, o.embedding, 0.5);
  }
  norm("output_norm.weight", o.embedding);
  matrix("output.weight", o.embedding, nVocab, 2);
  return w;
}

/**
 * Whether layer `i` of a qwen3next model is recurrent (gated delta net); the others are full attention.
 * llama.cpp's default when the file has no per-layer array: `(i + 1) % full_attention_interval != 0`.
 */
function isQwen3NextRecurrentLayer(i: number, fullAttentionInterval: number): boolean {
  return (i + 1) % fullAttentionInterval !== 0;
}

/**
 * qwen3next as llama.cpp (node-llama-cpp 3.21.1's build) loads it: `llama_model_qwen3next::load_arch_hparams`
 * and `load_arch_tensors` in src/models/qwen3next.cpp. Linear layers use the single `ssm_in` projection
 * (q, k, v, z interleaved per key head) that published Qwen3-Next GGUFs carry, as the header fixture
 * in qwen3next-header.ts does.
 */
function buildQwen3Next(o: ResolvedDemoModelOptions): GgufWriter {
  const a = "qwen3next";
  const vocab = buildDemoVocab();
  const nVocab = vocab.tokens.length;
  const E = o.embedding;
  const headDim = E / o.heads;
  const keyDim = o.linearHeadDim * o.linearKeyHeads;
  const valueDim = o.linearHeadDim * o.linearValueHeads;
  const w = new GgufWriter();

  addGeneral(w, o);

  w.addUint32(`${a}.vocab_size`, nVocab);
  w.addUint32(`${a}.context_length`, o.contextLength);
  w.addUint32(`${a}.embedding_length`, E);
  w.addUint32(`${a}.block_count`, o.layers);
  w.addUint32(`${a}.feed_forward_length`, o.feedForward);
  w.addUint32(`${a}.attention.head_count`, o.heads);
  w.addUint32(`${a}.attention.head_count_kv`, o.headsKv);
  w.addUint32(`${a}.attention.key_length`, headDim);
  w.addUint32(`${a}.attention.value_length`, headDim);
  w.addFloat32(`${a}.attention.layer_norm_rms_epsilon`, 1e-6);
  w.addFloat32(`${a}.rope.freq_base`, 10000);
  w.addUint32(`${a}.rope.dimension_count`, headDim / 4);
  w.addUint32(`${a}.expert_count`, o.experts);
  w.addUint32(`${a}.expert_used_count`, o.expertsUsed);
  w.addUint32(`${a}.expert_feed_forward_length`, o.expertFeedForward);
  w.addUint32(`${a}.expert_shared_feed_forward_length`, o.feedForward);
  w.addUint32(`${a}.ssm.conv_kernel`, o.convKernel);
  w.addUint32(`${a}.ssm.state_size`, o.linearHeadDim);
  w.addUint32(`${a}.ssm.group_count`, o.linearKeyHeads);
  w.addUint32(`${a}.ssm.time_step_rank`, o.linearValueHeads);
  w.addUint32(`${a}.ssm.inner_size`, valueDim);
  w.addUint32(`${a}.full_attention_interval`, o.fullAttentionInterval);

  addTokenizer(w, vocab);

  const { matType, matrix, norm } = tensorHelpers(w, o);
  /** An F32 vector of map(u), u uniform in [0, 1). */
  const f32 = (name: string, n: number, map: (u: number) => number): void => {
    w.addTensor(name, [n], GgmlType.F32, () => randomTensor(o.seed, name, n, 3)().map((v) => map((v + 1) / 2)));
  };

  w.addTensor("token_embd.weight", [E, nVocab], matType(E), randomTensor(o.seed, "token_embd.weight", E * nVocab, 1));
  norm("output_norm.weight", E);
  matrix("output.weight", E, nVocab, 2);
  for (let i = 0; i < o.layers; i++) {
    const p = `blk.${i}.`;
    norm(`${p}attn_norm.weight`, E);
    norm(`${p}post_attention_norm.weight`, E);
    if (isQwen3NextRecurrentLayer(i, o.fullAttentionInterval)) {
      matrix(`${p}ssm_in.weight`, E, 2 * keyDim + 2 * valueDim);
      matrix(`${p}ssm_ba.weight`, E, 2 * o.linearValueHeads);
      // the conv kernel must be F32 (ggml_ssm_conv); fan-in = kernel width
      w.addTensor(
        `${p}ssm_conv1d.weight`,
        [o.convKernel, 2 * keyDim + valueDim],
        GgmlType.F32,
        randomTensor(o.seed, `${p}ssm_conv1d.weight`, o.convKernel * (2 * keyDim + valueDim), o.convKernel),
      );
      // dt bias in [-0.5, 0.5); ssm_a = -exp(A_log) with A_log in [0, ln 16): decays, never growth
      f32(`${p}ssm_dt.bias`, o.linearValueHeads, (u) => u - 0.5);
      f32(`${p}ssm_a`, o.linearValueHeads, (u) => -Math.exp(u * Math.log(16)));
      norm(`${p}ssm_norm.weight`, o.linearHeadDim);
      matrix(`${p}ssm_out.weight`, valueDim, E, 0.5);
    } else {
      matrix(`${p}attn_q.weight`, E, 2 * o.heads * headDim); // query + gate
      matrix(`${p}attn_k.weight`, E, o.headsKv * headDim);
      matrix(`${p}attn_v.weight`, E, o.headsKv * headDim);
      matrix(`${p}attn_output.weight`, o.heads * headDim, E, 0.5);
      norm(`${p}attn_q_norm.weight`, headDim);
      norm(`${p}attn_k_norm.weight`, headDim);
    }
    // router in F32, as llama.cpp's quantizer keeps it
    w.addTensor(
      `${p}ffn_gate_inp.weight`,
      [E, o.experts],
      GgmlType.F32,
      randomTensor(o.seed, `${p}ffn_gate_inp.weight`, E * o.experts, E),
    );
    matrix(`${p}ffn_gate_exps.weight`, E, o.expertFeedForward, 1, o.experts);
    matrix(`${p}ffn_up_exps.weight`, E, o.expertFeedForward, 1, o.experts);
    matrix(`${p}ffn_down_exps.weight`, o.expertFeedForward, E, 0.5, o.experts);
    w.addTensor(`${p}ffn_gate_inp_shexp.weight`, [E], GgmlType.F32, randomTensor(o.seed, `${p}ffn_gate_inp_shexp.weight`, E, E));
    matrix(`${p}ffn_gate_shexp.weight`, E, o.feedForward);
    matrix(`${p}ffn_up_shexp.weight`, E, o.feedForward);
    matrix(`${p}ffn_down_shexp.weight`, o.feedForward, E, 0.5);
  }
  return w;
}

/** Generate the model file at `path` (overwrites). Deterministic for the given options. */
export async function writeDemoModel(path: string, options: DemoModelOptions = {}): Promise<void> {
  await buildDemoModel(options).write(path);
}

/** Stable short hash of the fully-resolved options (+ generator version). */
export function demoModelHash(options: DemoModelOptions = {}): string {
  const o = resolveDemoModelOptions(options);
  const covered = o.architecture === "llama" ? [...LLAMA_OPTION_KEYS] : (Object.keys(o) as (keyof ResolvedDemoModelOptions)[]);
  const keys = covered.sort();
  const canonical = JSON.stringify([DEMO_MODEL_GENERATOR_VERSION, keys.map((k) => [k, o[k]])]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

export function demoModelFileName(options: DemoModelOptions = {}): string {
  const o = resolveDemoModelOptions(options);
  const safeName = o.name.replace(/[^A-Za-z0-9._-]+/g, "_");
  return `${safeName}-${o.quantization}-${demoModelHash(options)}.gguf`;
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Path of a cached model for `options` in `dir` (default `<repo>/.cache/models`), generating it
 * if missing. Written to a unique temp file and renamed into place, so concurrent callers
 * (e.g. parallel vitest workers) never observe a partial file.
 */
export async function ensureDemoModel(options: DemoModelOptions = {}, dir: string = DEFAULT_MODEL_CACHE_DIR): Promise<string> {
  const path = join(dir, demoModelFileName(options));
  const pending = inFlight.get(path);
  if (pending) return pending;
  const job = (async () => {
    try {
      const s = await stat(path);
      if (s.isFile() && s.size > 0) return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    await mkdir(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeDemoModel(tmp, options);
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return path;
  })();
  inFlight.set(path, job);
  try {
    return await job;
  } finally {
    inFlight.delete(path);
  }
}
