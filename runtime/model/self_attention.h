#pragma once
// The attention half of a decoder layer (Mixtral's self_attn): q, k, v projections, rotary
// embedding on q and k, causal grouped-KV attention, output projection.
//   x [T×d] → q [T×H·hd], k, v [T×KV·hd] → RoPE(q), RoPE(k) → attention → o_proj → y [T×d]
// T = batch · seq rows, sequence-major within each batch row. forward keeps what backward needs;
// `x` must stay alive and unchanged until backward (the model owns it).
#include <cstdint>
#include <vector>

#include "attention.h"
#include "job_spec.h"
#include "param.h"
#include "tensor_parallel.h"

namespace moe::rt {

class SelfAttention {
 public:
  // With tp: this rank's n_heads/tp query heads and n_kv_heads/tp KV heads (tensor_parallel.h).
  SelfAttention(const ModelSpec& spec, int64_t layer_index, const TensorParallel& tp = {});

  void forward(const float* x, float* y, int64_t batch, int64_t seq);
  // dy [T×d] → dx [T×d] (overwritten); accumulates the four weights' grads.
  void backward(const float* dy, float* dx);

  std::vector<Param*> params() { return {&q_proj_, &k_proj_, &v_proj_, &o_proj_}; }

 private:
  int64_t d_model_, heads_, kv_heads_, head_dim_;  // local heads under tp
  TensorParallel tp_;
  double rope_theta_;
  Param q_proj_, k_proj_, v_proj_, o_proj_;  // [H·hd × d], [KV·hd × d] ×2, [d × H·hd]
  AttentionShape shape_;
  const float* x_ = nullptr;
  std::vector<float> q_, k_, v_, probs_, context_;          // saved activations
  std::vector<float> dq_, dk_, dv_, dcontext_;              // gradient scratch
};

}  // namespace moe::rt
