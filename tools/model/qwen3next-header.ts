/**
 * A header-only GGUF (metadata + tensor infos, no weights) with the shape of Qwen3-Next-80B-A3B-Instruct in
 * one of the common 4-bit quantizations: the memory planner reads only headers, and the real model (42-45 GiB)
 * is neither generated nor downloaded in tests.
 *
 * Hyperparameters from the model's config.json, keys as llama.cpp's convert_hf_to_gguf.py writes them
 * for Qwen3NextModel (ssm.state_size = linear_key_head_dim, ssm.group_count = linear_num_key_heads,
 * ssm.time_step_rank = linear_num_value_heads, ssm.inner_size = linear_value_head_dim × linear_num_value_heads).
 * Tensor types follow llama.cpp's quantizer (quants.ts), with an importance matrix as the published files are:
 * Q4_K_M comes to 45.08 GiB and IQ4_NL to 41.98 GiB, the published sizes; IQ4_XS to 39.67 GiB.
 */
import { GgmlType, GgufWriter } from "./gguf-writer.ts";
import { QUANT_FILE_TYPE, type Quant, quantizedTypes } from "./quants.ts";

export const QWEN3NEXT = Object.freeze({
  layers: 48,
  embedding: 2048,
  vocab: 151936,
  heads: 16,
  headsKv: 2,
  headDim: 256,
  fullAttentionInterval: 4,
  experts: 512,
  expertsUsed: 10,
  expertFeedForward: 512,
  sharedExpertFeedForward: 512,
  convKernel: 4,
  linearKeyHeadDim: 128,
  linearValueHeadDim: 128,
  linearKeyHeads: 16,
  linearValueHeads: 32,
  contextLength: 262144,
});

/** The tensors of the model before quantization: weights in F16 (any type the quantizer replaces), the rest F32. */
function tensors(): { name: string; dimensions: number[]; ggmlType: GgmlType }[] {
  const m = QWEN3NEXT;
  const E = m.embedding;
  const keyDim = m.linearKeyHeadDim * m.linearKeyHeads;
  const valueDim = m.linearValueHeadDim * m.linearValueHeads;
  const { F32, F16 } = GgmlType;
  const out: { name: string; dimensions: number[]; ggmlType: GgmlType }[] = [];
  const add = (name: string, dimensions: number[], ggmlType: GgmlType = F16) => out.push({ name, dimensions, ggmlType });
  add("token_embd.weight", [E, m.vocab]);
  add("output_norm.weight", [E], F32);
  add("output.weight", [E, m.vocab]);
  for (let i = 0; i < m.layers; i++) {
    const p = `blk.${i}.`;
    add(`${p}attn_norm.weight`, [E], F32);
    add(`${p}post_attention_norm.weight`, [E], F32);
    if ((i + 1) % m.fullAttentionInterval === 0) {
      add(`${p}attn_q.weight`, [E, 2 * m.heads * m.headDim]); // query + gate
      add(`${p}attn_k.weight`, [E, m.headsKv * m.headDim]);
      add(`${p}attn_v.weight`, [E, m.headsKv * m.headDim]);
      add(`${p}attn_output.weight`, [m.heads * m.headDim, E]);
      add(`${p}attn_q_norm.weight`, [m.headDim], F32);
      add(`${p}attn_k_norm.weight`, [m.headDim], F32);
    } else {
      add(`${p}ssm_in.weight`, [E, 2 * keyDim + 2 * valueDim]);
      add(`${p}ssm_ba.weight`, [E, 2 * m.linearValueHeads]);
      add(`${p}ssm_conv1d.weight`, [m.convKernel, 2 * keyDim + valueDim], F32);
      add(`${p}ssm_dt.bias`, [m.linearValueHeads], F32);
      add(`${p}ssm_a`, [m.linearValueHeads], F32);
      add(`${p}ssm_norm.weight`, [m.linearValueHeadDim], F32);
      add(`${p}ssm_out.weight`, [valueDim, E]);
    }
    add(`${p}ffn_gate_inp.weight`, [E, m.experts], F32);
    add(`${p}ffn_gate_exps.weight`, [E, m.expertFeedForward, m.experts]);
    add(`${p}ffn_up_exps.weight`, [E, m.expertFeedForward, m.experts]);
    add(`${p}ffn_down_exps.weight`, [m.expertFeedForward, E, m.experts]);
    add(`${p}ffn_gate_inp_shexp.weight`, [E], F32);
    add(`${p}ffn_gate_shexp.weight`, [E, m.sharedExpertFeedForward]);
    add(`${p}ffn_up_shexp.weight`, [E, m.sharedExpertFeedForward]);
    add(`${p}ffn_down_shexp.weight`, [m.sharedExpertFeedForward, E]);
  }
  return out;
}

export function qwen3NextHeader(quant: Quant = "Q4_K_M"): GgufWriter {
  const m = QWEN3NEXT;
  const w = new GgufWriter();
  const a = "qwen3next";
  w.addString("general.architecture", a);
  w.addString("general.name", `Qwen3-Next-80B-A3B-Instruct ${quant} (header only)`);
  w.addUint32("general.file_type", QUANT_FILE_TYPE[quant]);
  w.addUint32(`${a}.block_count`, m.layers);
  w.addUint32(`${a}.context_length`, m.contextLength);
  w.addUint32(`${a}.embedding_length`, m.embedding);
  w.addUint32(`${a}.feed_forward_length`, 5120);
  w.addUint32(`${a}.attention.head_count`, m.heads);
  w.addUint32(`${a}.attention.head_count_kv`, m.headsKv);
  w.addUint32(`${a}.attention.key_length`, m.headDim);
  w.addUint32(`${a}.attention.value_length`, m.headDim);
  w.addFloat32(`${a}.attention.layer_norm_rms_epsilon`, 1e-6);
  w.addFloat32(`${a}.rope.freq_base`, 10_000_000);
  w.addUint32(`${a}.rope.dimension_count`, m.headDim / 4);
  w.addUint32(`${a}.expert_count`, m.experts);
  w.addUint32(`${a}.expert_used_count`, m.expertsUsed);
  w.addUint32(`${a}.expert_feed_forward_length`, m.expertFeedForward);
  w.addUint32(`${a}.expert_shared_feed_forward_length`, m.sharedExpertFeedForward);
  w.addUint32(`${a}.ssm.conv_kernel`, m.convKernel);
  w.addUint32(`${a}.ssm.state_size`, m.linearKeyHeadDim);
  w.addUint32(`${a}.ssm.group_count`, m.linearKeyHeads);
  w.addUint32(`${a}.ssm.time_step_rank`, m.linearValueHeads);
  w.addUint32(`${a}.ssm.inner_size`, m.linearValueHeadDim * m.linearValueHeads);
  w.addUint32(`${a}.full_attention_interval`, m.fullAttentionInterval);
  w.addString("tokenizer.ggml.model", "gpt2");

  const list = tensors();
  const types = quantizedTypes(list, { layers: m.layers, experts: m.experts, gqa: m.heads / m.headsKv }, quant);
  for (const [i, t] of list.entries()) w.addTensorInfo(t.name, t.dimensions, types[i] as GgmlType);
  return w;
}
