/**
 * A header-only GGUF (metadata + tensor infos, no weights) with the shape of Qwen3-Next-80B-A3B-Instruct
 * in a Q4_K_M-like mix: a fixture for the memory planner, which reads only headers. The real model
 * cannot be generated (45 GiB) and is not downloaded in tests.
 *
 * Hyperparameters from the model's config.json, keys as llama.cpp's convert_hf_to_gguf.py writes them
 * for Qwen3NextModel (ssm.state_size = linear_key_head_dim, ssm.group_count = linear_num_key_heads,
 * ssm.time_step_rank = linear_num_value_heads, ssm.inner_size = linear_value_head_dim × linear_num_value_heads).
 * Types follow llama.cpp's Q4_K_M rules: Q4_K, with Q6_K for output, attn_v and ffn_down in the
 * "use more bits" layers; norms, conv and router in F32. The total is 45.08 GiB, the published size.
 */
import { GgmlType, GgufWriter } from "./gguf-writer.ts";

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

/** llama.cpp llama_tensor_get_type: use_more_bits(i, n). */
const useMoreBits = (i: number, n: number) => i < n / 8 || i >= (7 * n) / 8 || (i - Math.floor(n / 8)) % 3 === 2;

export function qwen3NextHeader(): GgufWriter {
  const m = QWEN3NEXT;
  const w = new GgufWriter();
  const a = "qwen3next";
  w.addString("general.architecture", a);
  w.addString("general.name", "Qwen3-Next-80B-A3B-Instruct (header only)");
  w.addUint32("general.file_type", 15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
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

  const E = m.embedding;
  const keyDim = m.linearKeyHeadDim * m.linearKeyHeads;
  const valueDim = m.linearValueHeadDim * m.linearValueHeads;
  const { F32, Q4_K, Q6_K } = GgmlType;
  w.addTensorInfo("token_embd.weight", [E, m.vocab], Q4_K);
  w.addTensorInfo("output_norm.weight", [E], F32);
  w.addTensorInfo("output.weight", [E, m.vocab], Q6_K);
  for (let i = 0; i < m.layers; i++) {
    const p = `blk.${i}.`;
    const more = useMoreBits(i, m.layers) ? Q6_K : Q4_K;
    w.addTensorInfo(`${p}attn_norm.weight`, [E], F32);
    w.addTensorInfo(`${p}post_attention_norm.weight`, [E], F32);
    if ((i + 1) % m.fullAttentionInterval === 0) {
      w.addTensorInfo(`${p}attn_q.weight`, [E, 2 * m.heads * m.headDim], Q4_K); // query + gate
      w.addTensorInfo(`${p}attn_k.weight`, [E, m.headsKv * m.headDim], Q4_K);
      w.addTensorInfo(`${p}attn_v.weight`, [E, m.headsKv * m.headDim], Q6_K);
      w.addTensorInfo(`${p}attn_output.weight`, [m.heads * m.headDim, E], Q4_K);
      w.addTensorInfo(`${p}attn_q_norm.weight`, [m.headDim], F32);
      w.addTensorInfo(`${p}attn_k_norm.weight`, [m.headDim], F32);
    } else {
      w.addTensorInfo(`${p}ssm_in.weight`, [E, 2 * keyDim + 2 * valueDim], Q4_K);
      w.addTensorInfo(`${p}ssm_ba.weight`, [E, 2 * m.linearValueHeads], Q4_K);
      w.addTensorInfo(`${p}ssm_conv1d.weight`, [m.convKernel, 2 * keyDim + valueDim], F32);
      w.addTensorInfo(`${p}ssm_dt.bias`, [m.linearValueHeads], F32);
      w.addTensorInfo(`${p}ssm_a`, [m.linearValueHeads], F32);
      w.addTensorInfo(`${p}ssm_norm.weight`, [m.linearValueHeadDim], F32);
      w.addTensorInfo(`${p}ssm_out.weight`, [valueDim, E], Q4_K);
    }
    w.addTensorInfo(`${p}ffn_gate_inp.weight`, [E, m.experts], F32);
    w.addTensorInfo(`${p}ffn_gate_exps.weight`, [E, m.expertFeedForward, m.experts], Q4_K);
    w.addTensorInfo(`${p}ffn_up_exps.weight`, [E, m.expertFeedForward, m.experts], Q4_K);
    w.addTensorInfo(`${p}ffn_down_exps.weight`, [m.expertFeedForward, E, m.experts], more);
    w.addTensorInfo(`${p}ffn_gate_inp_shexp.weight`, [E], F32);
    w.addTensorInfo(`${p}ffn_gate_shexp.weight`, [E, m.sharedExpertFeedForward], Q4_K);
    w.addTensorInfo(`${p}ffn_up_shexp.weight`, [E, m.sharedExpertFeedForward], Q4_K);
    w.addTensorInfo(`${p}ffn_down_shexp.weight`, [m.sharedExpertFeedForward, E], Q4_K);
  }
  return w;
}
