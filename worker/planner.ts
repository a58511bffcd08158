import { stat } from "node:fs/promises";
import { type GgufFileInfo, type GgufTensorInfo, readGgufFileInfo } from "node-llama-cpp";

/**
 * Memory planner: how many sequences (S) of how many tokens each fit the memory budget next to the
 * model's weights, computed from the GGUF header alone (no GPU, no model load).
 *
 *   total = weights + reserve + S × (context × kvBytesPerToken + recurrentStateBytesPerSequence)
 *
 * kvBytesPerToken counts only layers that keep a KV cache (all of them for a transformer, 1 in
 * full_attention_interval for qwen3next); recurrent (SSM / linear-attention) layers keep a fixed
 * state per sequence whatever the context, in f32, as llama.cpp's llama_memory_recurrent does.
 */

/** Bytes per block and elements per block of the ggml tensor types (ggml.c type_traits). */
const GGML_BLOCKS: Record<number, [bytes: number, elements: number]> = {
  0: [4, 1], // F32
  1: [2, 1], // F16
  2: [18, 32], // Q4_0
  3: [20, 32], // Q4_1
  6: [22, 32], // Q5_0
  7: [24, 32], // Q5_1
  8: [34, 32], // Q8_0
  9: [36, 32], // Q8_1
  10: [84, 256], // Q2_K
  11: [110, 256], // Q3_K
  12: [144, 256], // Q4_K
  13: [176, 256], // Q5_K
  14: [210, 256], // Q6_K
  15: [292, 256], // Q8_K
  16: [66, 256], // IQ2_XXS
  17: [74, 256], // IQ2_XS
  18: [98, 256], // IQ3_XXS
  19: [50, 256], // IQ1_S
  20: [18, 32], // IQ4_NL
  21: [110, 256], // IQ3_S
  22: [82, 256], // IQ2_S
  23: [136, 256], // IQ4_XS
  24: [1, 1], // I8
  25: [2, 1], // I16
  26: [4, 1], // I32
  27: [8, 1], // I64
  28: [8, 1], // F64
  29: [56, 256], // IQ1_M
  30: [2, 1], // BF16
  34: [54, 256], // TQ1_0
  35: [66, 256], // TQ2_0
  39: [17, 32], // MXFP4
};

/** KV cache element types docket can plan for (llama.cpp's default is f16). */
export const KV_TYPE_BYTES = { f32: 4, f16: 2, q8_0: 34 / 32 } as const;
export type KvCacheType = keyof typeof KV_TYPE_BYTES;

/** Context sizes the planner picks when it must shrink them are multiples of this (llama.cpp pads to 256). */
export const CONTEXT_STEP = 256;
/** Compute buffers, output logits, backend contexts and fragmentation, kept out of the budget. */
export const DEFAULT_RESERVE_BYTES = 1024 ** 3;
/** Below this a sequence holds too little of a document to be useful. */
export const DEFAULT_MIN_CONTEXT = 1024;

export function tensorBytes(t: Pick<GgufTensorInfo, "dimensions" | "ggmlType" | "name">): number {
  const block = GGML_BLOCKS[t.ggmlType];
  if (!block) throw new Error(`tensor ${t.name}: ggml type ${t.ggmlType} is unknown to the memory planner`);
  const elements = t.dimensions.reduce<number>((a, d) => a * Number(d), 1);
  return Math.ceil(elements / block[1]) * block[0];
}

/** What the planner needs to know about a model, read from its GGUF metadata. */
export interface ModelShape {
  architecture: string;
  layers: number;
  /** Layers that keep a KV cache (grows with the context). */
  attentionLayers: number;
  /** Layers that keep a fixed recurrent state per sequence. */
  recurrentLayers: number;
  kvBytesPerToken: number;
  recurrentStateBytesPerSequence: number;
  trainContextSize?: number;
  /** Weights: the sum of the tensor sizes in the file. */
  modelBytes: number;
  /** Mixture-of-experts weights (tensors named *_exps), the part that can live in CPU memory. */
  expertBytes: number;
}

type Meta = Record<string, unknown>;

function num(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/** Architectures whose every layer is recurrent (llama_model_is_recurrent). */
const RECURRENT_ARCHITECTURES = new Set(["mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"]);

/** Which layers are recurrent, following llama_model::load_hparams for the hybrid architectures docket knows. */
function recurrentLayerFlags(arch: string, a: Meta, layers: number): boolean[] {
  if (RECURRENT_ARCHITECTURES.has(arch)) return Array.from({ length: layers }, () => true);
  const interval = num(a.full_attention_interval);
  // qwen3next (and qwen3.5): recurrent_layer_arr[i] = ((i + 1) % full_attention_interval != 0)
  if (interval && interval > 0) return Array.from({ length: layers }, (_, i) => (i + 1) % interval !== 0);
  const headsKv = (a.attention as Meta | undefined)?.head_count_kv;
  // jamba, granite-hybrid, nemotron-h, lfm2...: a layer with no KV heads is recurrent
  if (Array.isArray(headsKv)) return Array.from({ length: layers }, (_, i) => num(headsKv[i]) === 0);
  return Array.from({ length: layers }, () => false);
}

/** llama_hparams::n_embd_r() + n_embd_s(): the f32 elements of one layer's recurrent state for one sequence. */
function recurrentStateElements(a: Meta): number {
  const ssm = (a.ssm ?? {}) as Meta;
  const wkv = (a.wkv ?? {}) as Meta;
  const embd = num(a.embedding_length) ?? 0;
  const wkvHeadSize = num(wkv.head_size) ?? 0;
  if (wkvHeadSize) return (num(a.token_shift_count) ?? 2) * embd + embd * wkvHeadSize;
  const conv = num(ssm.conv_kernel) ?? 0;
  const inner = num(ssm.inner_size) ?? 0;
  const state = num(ssm.state_size) ?? 0;
  const groups = num(ssm.group_count) ?? 0;
  return (conv > 0 ? conv - 1 : 0) * (inner + 2 * groups * state) + state * inner;
}

/** Reads the model's memory shape from GGUF file info (metadata + tensor infos). */
export function modelShape(info: GgufFileInfo, options: { kvCacheType?: KvCacheType; fileBytes?: number } = {}): ModelShape {
  const arch = String(info.metadata.general?.architecture ?? "");
  const a = ((info.metadata as unknown as Meta)[arch] ?? {}) as Meta;
  const attention = (a.attention ?? {}) as Meta;
  const layers = num(a.block_count) ?? 0;
  if (!layers) throw new MemoryPlanError("unknown_model_shape", `GGUF metadata has no ${arch}.block_count`);
  const heads = num(attention.head_count) ?? 0;
  const embd = num(a.embedding_length) ?? 0;
  const keyLength = num(attention.key_length) ?? (heads ? embd / heads : 0);
  const valueLength = num(attention.value_length) ?? (heads ? embd / heads : 0);
  const headsKv = attention.head_count_kv;
  const recurrent = recurrentLayerFlags(arch, a, layers);
  const kvBytes = KV_TYPE_BYTES[options.kvCacheType ?? "f16"];
  let kvElementsPerToken = 0;
  for (let i = 0; i < layers; i++) {
    if (recurrent[i]) continue;
    const h = Array.isArray(headsKv) ? (num(headsKv[i]) ?? heads) : (num(headsKv) ?? heads);
    kvElementsPerToken += h * (keyLength + valueLength);
  }
  const recurrentLayers = recurrent.filter(Boolean).length;
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
  const modelBytes = tensors.length ? tensors.reduce((s, t) => s + tensorBytes(t), 0) : (options.fileBytes ?? 0);
  const expertBytes = tensors.filter((t) => /_exps\./.test(t.name)).reduce((s, t) => s + tensorBytes(t), 0);
  const train = num(a.context_length);
  return {
    architecture: arch,
    layers,
    attentionLayers: layers - recurrentLayers,
    recurrentLayers,
    kvBytesPerToken: Math.ceil(kvElementsPerToken * kvBytes),
    recurrentStateBytesPerSequence: recurrentLayers * recurrentStateElements(a) * 4,
    ...(train ? { trainContextSize: train } : {}),
    modelBytes,
    expertBytes,
  };
}

export type MemoryPlanErrorCode = "insufficient_memory" | "unknown_model_shape";

/** The model cannot run in the budget (or its shape cannot be read); the message says what to change. */
export class MemoryPlanError extends Error {
  constructor(
    readonly code: MemoryPlanErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PlanMemoryInput {
  /** From readGgufFileInfo (metadata + tensor infos), or a shape computed already. */
  fileInfo?: GgufFileInfo;
  shape?: ModelShape;
  /** Memory for weights + KV cache + recurrent state + reserve (DOCKET_GPU_MEMORY_BYTES). */
  budgetBytes: number;
  /** DOCKET_MAX_BATCH. */
  maxSequences: number;
  /** DOCKET_CONTEXT_SIZE: tokens per sequence, preferred. */
  contextSize: number;
  minContextSize?: number;
  reserveBytes?: number;
  kvCacheType?: KvCacheType;
}

export interface MemoryPlan {
  sequences: number;
  /** Tokens per sequence. */
  contextSize: number;
  budgetBytes: number;
  modelBytes: number;
  reserveBytes: number;
  kvBytesPerToken: number;
  recurrentStateBytesPerSequence: number;
  /** S × context × kvBytesPerToken. */
  kvCacheBytes: number;
  /** S × recurrentStateBytesPerSequence. */
  recurrentStateBytes: number;
  totalBytes: number;
  /** What the configured maxSequences × contextSize would have needed. */
  wantedBytes: number;
  /** Layers to keep in CPU memory so the configured batch fits on the GPU (0 when it fits already). */
  cpuLayersForFullBatch: number;
  /** The largest weights file that would run the configured batch in this budget. */
  maxModelBytesForFullBatch: number;
  shape: ModelShape;
  notes: string[];
}

const GB = 1e9;
export const formatBytes = (b: number) =>
  b >= GB ? `${(b / GB).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`;
const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;

/**
 * The largest S × context that fits: the configured context with as many sequences as fit (up to
 * maxSequences); if not even one sequence fits at that context, one sequence with the largest
 * context that fits (a multiple of 256, at least minContextSize). Throws MemoryPlanError
 * (insufficient_memory) when one sequence at minContextSize does not fit. Pure: no GPU, no I/O.
 */
export function planMemory(input: PlanMemoryInput): MemoryPlan {
  const shape =
    input.shape ?? (input.fileInfo ? modelShape(input.fileInfo, { kvCacheType: input.kvCacheType ?? "f16" }) : undefined);
  if (!shape) throw new MemoryPlanError("unknown_model_shape", "planMemory needs fileInfo or shape");
  const reserve = input.reserveBytes ?? DEFAULT_RESERVE_BYTES;
  const budget = input.budgetBytes;
  const kv = shape.kvBytesPerToken;
  const rec = shape.recurrentStateBytesPerSequence;
  const notes: string[] = [];
  const wantedContext = Math.min(input.contextSize, shape.trainContextSize ?? Number.POSITIVE_INFINITY);
  if (wantedContext < input.contextSize) {
    notes.push(`context ${input.contextSize} capped at the model's training context ${wantedContext}`);
  }
  const minContext = Math.min(input.minContextSize ?? DEFAULT_MIN_CONTEXT, wantedContext);
  const perSequence = (ctx: number) => ctx * kv + rec;
  const wantedBytes = shape.modelBytes + reserve + input.maxSequences * perSequence(wantedContext);
  const free = budget - shape.modelBytes - reserve;

  let sequences = Math.min(input.maxSequences, Math.floor(free / perSequence(wantedContext)));
  let contextSize = wantedContext;
  if (sequences < 1) {
    sequences = 1;
    contextSize = kv > 0 ? Math.min(wantedContext, Math.floor((free - rec) / kv / CONTEXT_STEP) * CONTEXT_STEP) : wantedContext;
  }
  const fullBatchState = wantedBytes - shape.modelBytes;
  const maxModelBytesForFullBatch = Math.max(0, budget - fullBatchState);
  const cpuLayersForFullBatch = cpuLayersNeeded(shape, wantedBytes - budget);

  if (free < perSequence(minContext) || contextSize < minContext) {
    throw new MemoryPlanError(
      "insufficient_memory",
      `the model does not fit the memory budget: weights ${formatBytes(shape.modelBytes)} + reserve ${formatBytes(reserve)} ` +
        `+ one sequence of ${minContext} tokens (${formatBytes(perSequence(minContext))}) = ` +
        `${formatBytes(shape.modelBytes + reserve + perSequence(minContext))} > DOCKET_GPU_MEMORY_BYTES ${formatBytes(budget)}. ` +
        `Raise DOCKET_GPU_MEMORY_BYTES, or use a smaller quantization (weights of at most ${formatBytes(Math.max(0, free + shape.modelBytes - perSequence(minContext)))})` +
        (shape.layers > 1
          ? `, or keep at least ${cpuLayersNeeded(shape, shape.modelBytes + reserve + perSequence(minContext) - budget)} of ${shape.layers} layers${shape.expertBytes > 0 ? "' experts" : ""} in CPU memory`
          : ""),
    );
  }
  if (sequences < input.maxSequences) {
    notes.push(
      `${sequences} of DOCKET_MAX_BATCH=${input.maxSequences} sequences fit at ${contextSize} tokens: ` +
        `weights take ${formatBytes(shape.modelBytes)} (${gib(shape.modelBytes)}) of ${formatBytes(budget)}`,
    );
    notes.push(
      `for ${input.maxSequences} × ${wantedContext} (${formatBytes(fullBatchState - reserve)} of KV cache and state) use a quantization ` +
        `of at most ${formatBytes(maxModelBytesForFullBatch)} (${gib(maxModelBytesForFullBatch)}), keep ${cpuLayersForFullBatch} of ${shape.layers} layers` +
        `${shape.expertBytes > 0 ? "' experts" : ""} in CPU memory, or raise DOCKET_GPU_MEMORY_BYTES to ${formatBytes(wantedBytes)}`,
    );
  }
  if (contextSize < wantedContext)
    notes.push(`context reduced from ${wantedContext} to ${contextSize} tokens to fit one sequence`);
  if (shape.recurrentLayers > 0 && shape.attentionLayers > 0) {
    notes.push(
      `hybrid model: ${shape.attentionLayers} of ${shape.layers} layers keep a KV cache, ${shape.recurrentLayers} keep a fixed recurrent state`,
    );
  }
  const kvCacheBytes = sequences * contextSize * kv;
  const recurrentStateBytes = sequences * rec;
  return {
    sequences,
    contextSize,
    budgetBytes: budget,
    modelBytes: shape.modelBytes,
    reserveBytes: reserve,
    kvBytesPerToken: kv,
    recurrentStateBytesPerSequence: rec,
    kvCacheBytes,
    recurrentStateBytes,
    totalBytes: shape.modelBytes + reserve + kvCacheBytes + recurrentStateBytes,
    wantedBytes,
    cpuLayersForFullBatch,
    maxModelBytesForFullBatch,
    shape,
    notes,
  };
}

/** Layers whose weights (experts, for a mixture-of-experts model) must leave the GPU to free `bytes`. */
function cpuLayersNeeded(shape: ModelShape, bytes: number): number {
  if (bytes <= 0) return 0;
  const perLayer = (shape.expertBytes > 0 ? shape.expertBytes : shape.modelBytes) / shape.layers;
  return Math.min(shape.layers, Math.ceil(bytes / perLayer));
}

/** One line for logs. */
export function describePlan(p: MemoryPlan): string {
  const head =
    `${p.sequences} sequences × ${p.contextSize} tokens: weights ${formatBytes(p.modelBytes)} + KV ${formatBytes(p.kvCacheBytes)} ` +
    `(${(p.kvBytesPerToken / 1024).toFixed(1)} KiB/token) + recurrent state ${formatBytes(p.recurrentStateBytes)} ` +
    `(${formatBytes(p.recurrentStateBytesPerSequence)}/sequence) + reserve ${formatBytes(p.reserveBytes)} = ` +
    `${formatBytes(p.totalBytes)} of ${formatBytes(p.budgetBytes)}`;
  return p.notes.length ? `${head}; ${p.notes.join("; ")}` : head;
}

/** Reads a GGUF file's header (not its weights) and plans for it: what the worker calls at start. */
export async function planMemoryForModel(
  modelPath: string,
  options: Omit<PlanMemoryInput, "fileInfo" | "shape">,
): Promise<MemoryPlan> {
  const fileInfo = await readGgufFileInfo(modelPath, { logWarnings: false, ignoreKeys: ["tokenizer.ggml.merges"] });
  const fileBytes = (await stat(modelPath)).size;
  const shape = modelShape(fileInfo, { kvCacheType: options.kvCacheType ?? "f16", fileBytes });
  return planMemory({ ...options, shape });
}
