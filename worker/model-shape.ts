import type { GgufFileInfo, GgufTensorInfo } from "node-llama-cpp";

/**
 * A model's memory shape, read from its GGUF header alone (no GPU, no model load): the weights of each
 * layer, which layers keep a KV cache (grows with the context) and which a fixed recurrent state (one per
 * sequence, whatever the context). The memory planner (planner.ts) places these on the GPU or in system
 * memory and counts sequences.
 */

/** Bytes per block and elements per block of the ggml tensor types (ggml.c type_traits). */
export const GGML_BLOCKS: Record<number, [bytes: number, elements: number]> = {
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

export function tensorBytes(t: Pick<GgufTensorInfo, "dimensions" | "ggmlType" | "name">): number {
  const block = GGML_BLOCKS[t.ggmlType];
  if (!block) throw new ModelShapeError(`tensor ${t.name}: ggml type ${t.ggmlType} is unknown to the memory planner`);
  const elements = t.dimensions.reduce<number>((a, d) => a * Number(d), 1);
  return Math.ceil(elements / block[1]) * block[0];
}

/** One repeating block (blk.<i>.*) of the model. */
export interface LayerShape {
  weightBytes: number;
  /** KV cache bytes per token of context (0 on a recurrent layer). */
  kvBytesPerToken: number;
  /** Recurrent state bytes per sequence (0 on an attention layer). */
  stateBytesPerSequence: number;
}

/** What the planner needs to know about a model, read from its GGUF metadata. */
export interface ModelShape {
  architecture: string;
  /** Repeating blocks (`<arch>.block_count`); node-llama-cpp's gpuLayers counts one more, the output layer. */
  layers: number;
  /** Layers that keep a KV cache (grows with the context). */
  attentionLayers: number;
  /** Layers that keep a fixed recurrent state per sequence. */
  recurrentLayers: number;
  /** Sums over all layers. */
  kvBytesPerToken: number;
  recurrentStateBytesPerSequence: number;
  trainContextSize?: number;
  /** Weights: the sum of the tensor sizes in the file. */
  modelBytes: number;
  /** Token embeddings: llama.cpp keeps its input layer in system memory whatever gpuLayers says. */
  inputBytes: number;
  /** The output layer (output.weight, output_norm): on the GPU only when every layer is (gpuLayers = layers + 1). */
  outputBytes: number;
  perLayer: LayerShape[];
}

export class ModelShapeError extends Error {
  readonly code = "unknown_model_shape";
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

/**
 * llama_hparams::n_embd_r() + n_embd_s() (src/llama-hparams.cpp): the elements of one layer's recurrent state
 * for one sequence, kept in f32 (llama_memory_recurrent's type_r and type_s).
 *   RWKV:  token_shift_count × n_embd  +  n_embd × wkv.head_size
 *   LFM2:  n_embd × (shortconv.l_cache - 1)
 *   Mamba, Gated DeltaNet (qwen3next): (ssm.conv_kernel - 1) × (ssm.inner_size + 2 × ssm.group_count × ssm.state_size)
 *                                      + ssm.state_size × ssm.inner_size
 * For Qwen3-Next-80B-A3B that is 3 × (4096 + 2 × 16 × 128) + 128 × 4096 = 548,864 floats: 2.2 MB per layer.
 */
function recurrentStateElements(a: Meta): number {
  const ssm = (a.ssm ?? {}) as Meta;
  const wkv = (a.wkv ?? {}) as Meta;
  const embd = num(a.embedding_length) ?? 0;
  const wkvHeadSize = num(wkv.head_size) ?? 0;
  if (wkvHeadSize) return (num(a.token_shift_count) ?? 2) * embd + embd * wkvHeadSize;
  const lCache = num((a.shortconv as Meta | undefined)?.l_cache) ?? 0;
  if (lCache) return embd * (lCache - 1);
  const conv = num(ssm.conv_kernel) ?? 0;
  const inner = num(ssm.inner_size) ?? 0;
  const state = num(ssm.state_size) ?? 0;
  const groups = num(ssm.group_count) ?? 0;
  return (conv > 0 ? conv - 1 : 0) * (inner + 2 * groups * state) + state * inner;
}

/** Where a tensor lives when llama.cpp splits the model by gpuLayers (llama_model::load_tensors). */
export function tensorLayer(name: string): number | "input" | "output" {
  const block = /^blk\.(\d+)\./.exec(name);
  if (block) return Number(block[1]);
  if (name.startsWith("token_embd") || name.startsWith("per_layer_token_embd")) return "input";
  return "output";
}

/** Reads the model's memory shape from GGUF file info (metadata + tensor infos). */
export function modelShape(info: GgufFileInfo, options: { kvCacheType?: KvCacheType; fileBytes?: number } = {}): ModelShape {
  const arch = String(info.metadata.general?.architecture ?? "");
  const a = ((info.metadata as unknown as Meta)[arch] ?? {}) as Meta;
  const attention = (a.attention ?? {}) as Meta;
  const layers = num(a.block_count) ?? 0;
  if (!layers) throw new ModelShapeError(`GGUF metadata has no ${arch}.block_count`);
  const heads = num(attention.head_count) ?? 0;
  const embd = num(a.embedding_length) ?? 0;
  const keyLength = num(attention.key_length) ?? (heads ? embd / heads : 0);
  const valueLength = num(attention.value_length) ?? (heads ? embd / heads : 0);
  const headsKv = attention.head_count_kv;
  const recurrent = recurrentLayerFlags(arch, a, layers);
  const kvBytes = KV_TYPE_BYTES[options.kvCacheType ?? "f16"];
  const stateBytes = recurrentStateElements(a) * 4;
  const perLayer: LayerShape[] = Array.from({ length: layers }, (_, i) => {
    if (recurrent[i]) return { weightBytes: 0, kvBytesPerToken: 0, stateBytesPerSequence: stateBytes };
    const h = Array.isArray(headsKv) ? (num(headsKv[i]) ?? heads) : (num(headsKv) ?? heads);
    return { weightBytes: 0, kvBytesPerToken: Math.ceil(h * (keyLength + valueLength) * kvBytes), stateBytesPerSequence: 0 };
  });
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
  let inputBytes = 0;
  let outputBytes = 0;
  for (const t of tensors) {
    const where = tensorLayer(t.name);
    const bytes = tensorBytes(t);
    if (where === "input") inputBytes += bytes;
    else if (where === "output" || where >= layers) outputBytes += bytes;
    else (perLayer[where] as LayerShape).weightBytes += bytes;
  }
  // A header without tensor infos: the file size stands for the weights, spread over the layers.
  if (!tensors.length && options.fileBytes) for (const l of perLayer) l.weightBytes = options.fileBytes / layers;
  const modelBytes = inputBytes + outputBytes + perLayer.reduce((s, l) => s + l.weightBytes, 0);
  const recurrentLayers = recurrent.filter(Boolean).length;
  const train = num(a.context_length);
  return {
    architecture: arch,
    layers,
    attentionLayers: layers - recurrentLayers,
    recurrentLayers,
    kvBytesPerToken: perLayer.reduce((s, l) => s + l.kvBytesPerToken, 0),
    recurrentStateBytesPerSequence: perLayer.reduce((s, l) => s + l.stateBytesPerSequence, 0),
    ...(train ? { trainContextSize: train } : {}),
    modelBytes,
    inputBytes,
    outputBytes,
    perLayer,
  };
}
