import { GgufFileType } from "node-llama-cpp";

/**
 * The common 4-bit GGUF quantizations, and the tensor types llama.cpp's quantizer gives each tensor of a
 * model under them (llama_tensor_get_type and tensor_allows_quantization in llama.cpp's src/llama-quant.cpp,
 * the branches these five file types reach). From a header's tensor shapes this sizes every quantization of
 * that model without downloading it. Checked against published files: Qwen3-Next-80B-A3B-Instruct Q4_K_M is
 * 45.08 GiB and IQ4_NL (made with an importance matrix) 41.98 GiB (docs/memory-planning.md); this module
 * gives 45.081 and 41.981 GiB (test/quants.test.ts).
 */

/** Common 4-bit quantizations, largest first; `Q4_K_M` is llama.cpp's default 4-bit mix. */
export const FOUR_BIT_QUANTS = ["Q4_K_M", "Q4_K_S", "IQ4_NL", "MXFP4_MOE", "IQ4_XS"] as const;
export type Quant = (typeof FOUR_BIT_QUANTS)[number];

/** general.file_type (llama_ftype) of each. */
export const QUANT_FILE_TYPE: Record<Quant, number> = { Q4_K_M: 15, Q4_K_S: 14, IQ4_NL: 25, IQ4_XS: 30, MXFP4_MOE: 38 };

/** ggml tensor types used below (ggml.h enum ggml_type). */
export const T = {
  F16: 1,
  Q4_0: 2,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  IQ4_NL: 20,
  IQ4_XS: 23,
  MXFP4: 39,
} as const;

const BLOCK: Record<number, number> = { 1: 1, 2: 32, 6: 32, 7: 32, 8: 32, 12: 256, 13: 256, 14: 256, 20: 32, 23: 256, 39: 32 };
const DEFAULT_TYPE: Record<Quant, number> = {
  Q4_K_M: T.Q4_K,
  Q4_K_S: T.Q4_K,
  IQ4_NL: T.IQ4_NL,
  IQ4_XS: T.IQ4_XS,
  MXFP4_MOE: T.MXFP4,
};

/** A model's quantization-relevant hyperparameters. */
export interface QuantModel {
  /** block_count (llama.cpp's n_layer_all). */
  layers: number;
  /** expert_count (0 or 1: dense). */
  experts: number;
  /** head_count / head_count_kv of layer 0 (llama_hparams::n_gqa()). */
  gqa: number;
}

export interface QuantOptions {
  /**
   * Made with an importance matrix, as the published IQ4 files are (unsloth, bartowski): without one, IQ4_NL
   * and IQ4_XS keep the first eighth of the ffn_down tensors in Q5_K. Default true.
   */
  imatrix?: boolean;
}

/** A tensor info as readGgufFileInfo returns it (GgufTensorInfo) or a header writer holds it. */
export interface QuantTensor {
  name: string;
  dimensions: readonly (number | bigint)[];
  ggmlType: number;
}
type Tensor = QuantTensor;

/** tensor_allows_quantization: 2-D and 3-D weights only, and not the small or sensitive ones. */
function quantizable(t: Tensor): boolean {
  const n = t.name;
  if (t.dimensions.length < 2 || !n.endsWith("weight")) return false;
  return !/_norm\.weight|ffn_gate_inp\.weight|ssm_conv1d|shortconv\.conv\.weight|attn_rel_b\.weight|^position_embd|^token_types|time_mix_(first|w0|w1|w2|v0|v1|v2|a0|a1|a2|g1|g2|decay_w1|decay_w2|lerp_fused)\.weight/.test(
    n,
  );
}

type Category = "token_embd" | "output" | "attn_v" | "attn_k" | "attn_q" | "attn_output" | "ffn_down" | "other";

/** tensor_get_category, the categories these file types branch on (attn_qkv and attn_kv_b count as attn_v). */
function category(name: string): Category {
  if (name === "output.weight") return "output";
  if (name === "token_embd.weight" || name === "per_layer_token_embd.weight") return "token_embd";
  if (/attn_(qkv|kv_b|v)\.weight/.test(name)) return "attn_v";
  if (name.includes("attn_k.weight")) return "attn_k";
  if (name.includes("attn_q.weight")) return "attn_q";
  if (name.includes("attn_output.weight")) return "attn_output";
  if (name.includes("ffn_down")) return "ffn_down";
  return "other";
}

/** llama.cpp's use_more_bits(i_layer, n_layers): the first and last eighth and every third layer between. */
const useMoreBits = (i: number, n: number) =>
  i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;

/** tensor_type_fallback: a row length the type's block does not divide gets the nearest type it does. */
function fallback(type: number, columns: number): number {
  if (columns % (BLOCK[type] ?? 1) === 0) return type;
  const next: Record<number, number> = { [T.IQ4_XS]: T.IQ4_NL, [T.Q4_K]: T.Q5_0, [T.Q5_K]: T.Q5_1, [T.Q6_K]: T.Q8_0 };
  const to = next[type];
  return to !== undefined && columns % (BLOCK[to] ?? 1) === 0 ? to : T.F16;
}

/** The ggml type of every tensor of a model quantized to `quant`, in the order given. */
export function quantizedTypes(tensors: readonly Tensor[], model: QuantModel, quant: Quant, o: QuantOptions = {}): number[] {
  const imatrix = o.imatrix ?? true;
  const tied = !tensors.some((t) => t.name === "output.weight");
  const attnV = tensors.filter((t) => category(t.name) === "attn_v").length;
  let iAttnV = 0;
  return tensors.map((t) => {
    if (!quantizable(t)) return t.ggmlType;
    const columns = Number(t.dimensions[0]);
    const cat = category(t.name);
    const layer = Number(/^blk\.(\d+)\./.exec(t.name)?.[1] ?? 0);
    let type = DEFAULT_TYPE[quant];
    if (cat === "output" || (tied && cat === "token_embd")) {
      type = quant === "MXFP4_MOE" || columns % (BLOCK[type] ?? 1) !== 0 ? T.Q8_0 : T.Q6_K;
    } else if (quant === "MXFP4_MOE") {
      type = t.dimensions.length > 2 && Number(t.dimensions[2]) > 1 ? T.MXFP4 : T.Q8_0;
    } else if (cat === "attn_v") {
      if ((quant === "IQ4_NL" || quant === "IQ4_XS") && model.gqa >= 4) type = T.Q5_K;
      else if (quant === "Q4_K_M" && useMoreBits(iAttnV, attnV)) type = T.Q6_K;
      else if (quant === "Q4_K_S" && iAttnV < 4) type = T.Q5_K;
      if (model.experts === 8) type = T.Q8_0;
      iAttnV++;
    } else if (cat === "attn_k") {
      if (model.experts === 8) type = T.Q8_0;
    } else if (cat === "ffn_down") {
      if (quant === "Q4_K_M" && useMoreBits(layer, model.layers)) type = T.Q6_K;
      else if ((quant === "IQ4_NL" || quant === "IQ4_XS") && !imatrix && layer < Math.floor(model.layers / 8)) type = T.Q5_K;
      else if (quant === "Q4_K_S" && layer < Math.floor(model.layers / 8)) type = T.Q5_K;
    } else if (cat === "attn_output" && model.experts === 8) {
      type = T.Q5_K;
    }
    return fallback(type, columns);
  });
}

/** `quant` from a name: "q4_k_m", "Q4_K_M", "MOSTLY_Q4_K_M" (GgufFileType's names); undefined when not one of these. */
export function parseQuant(name: string): Quant | undefined {
  const q = name
    .trim()
    .toUpperCase()
    .replace(/^MOSTLY_/, "");
  return (FOUR_BIT_QUANTS as readonly string[]).includes(q) ? (q as Quant) : undefined;
}

/** general.file_type as people write it: `MOSTLY_Q4_K_M` → `Q4_K_M`, `ALL_F32` → `F32`. */
export function quantName(fileType: number | undefined): string {
  if (fileType === undefined) return "unknown";
  const name = GgufFileType[fileType] ?? String(fileType);
  return name.replace(/^MOSTLY_|^ALL_/, "");
}
