// Self-attention block (see self_attention.h): projections through linear_*, the rest in the ops.
#include "self_attention.h"

#include <string>

#include "linear.h"
#include "param_shard.h"
#include "rope.h"

namespace moe::rt {

namespace {
std::string name(int64_t layer, const char* proj) {
  return "model.layers." + std::to_string(layer) + ".self_attn." + proj + ".weight";
}
}  // namespace

SelfAttention::SelfAttention(const ModelSpec& spec, int64_t layer, const TensorParallel& tp)
    : d_model_(spec.d_model),
      heads_(spec.n_heads / tp.size),
      kv_heads_(spec.n_kv_heads / tp.size),
      head_dim_(spec.resolved_head_dim()),
      tp_(tp),
      rope_theta_(spec.rope_theta),
      q_proj_(sharded_param(name(layer, "q_proj"), {spec.n_heads * head_dim_, d_model_}, 0, tp.rank, tp.size)),
      k_proj_(sharded_param(name(layer, "k_proj"), {spec.n_kv_heads * head_dim_, d_model_}, 0, tp.rank, tp.size)),
      v_proj_(sharded_param(name(layer, "v_proj"), {spec.n_kv_heads * head_dim_, d_model_}, 0, tp.rank, tp.size)),
      o_proj_(sharded_param(name(layer, "o_proj"), {d_model_, spec.n_heads * head_dim_}, 1, tp.rank, tp.size)) {}

void SelfAttention::forward(const float* x, float* y, int64_t batch, int64_t seq) {
  const int64_t T = batch * seq, qw = heads_ * head_dim_, kvw = kv_heads_ * head_dim_;
  shape_ = AttentionShape{batch, seq, heads_, kv_heads_, head_dim_};
  x_ = x;
  q_.resize(T * qw), k_.resize(T * kvw), v_.resize(T * kvw), context_.resize(T * qw);
  probs_.resize(batch * heads_ * seq * seq);
  linear_forward(q_.data(), x, q_proj_.value.data(), T, d_model_, qw);
  linear_forward(k_.data(), x, k_proj_.value.data(), T, d_model_, kvw);
  linear_forward(v_.data(), x, v_proj_.value.data(), T, d_model_, kvw);
  rope_forward(q_.data(), batch, seq, heads_, head_dim_, rope_theta_);
  rope_forward(k_.data(), batch, seq, kv_heads_, head_dim_, rope_theta_);
  attention_forward(context_.data(), probs_.data(), q_.data(), k_.data(), v_.data(), shape_);
  linear_forward(y, context_.data(), o_proj_.value.data(), T, qw, d_model_);
  tp_.reduce(y, T * d_model_);  // row-parallel: the heads' partial sums
}

void SelfAttention::backward(const float* dy, float* dx) {
  const int64_t T = shape_.batch * shape_.seq, qw = heads_ * head_dim_, kvw = kv_heads_ * head_dim_;
  dq_.resize(T * qw), dk_.resize(T * kvw), dv_.resize(T * kvw), dcontext_.resize(T * qw);
  linear_backward(dcontext_.data(), grad_sink(o_proj_, shape_.seq), dy, context_.data(), o_proj_.value.data(), T, qw,
                  d_model_);
  attention_backward(dq_.data(), dk_.data(), dv_.data(), dcontext_.data(), probs_.data(), q_.data(),
                     k_.data(), v_.data(), shape_);
  rope_backward(dq_.data(), shape_.batch, shape_.seq, heads_, head_dim_, rope_theta_);
  rope_backward(dk_.data(), shape_.batch, shape_.seq, kv_heads_, head_dim_, rope_theta_);
  // dx = dq·Wq + dk·Wk + dv·Wv (the rope'd q, k are not the projections' outputs, but the
  // projections' weight grads need only x and the grads of their outputs).
  linear_backward(dx, grad_sink(q_proj_, shape_.seq), dq_.data(), x_, q_proj_.value.data(), T, d_model_, qw);
  linear_backward(dx, grad_sink(k_proj_, shape_.seq), dk_.data(), x_, k_proj_.value.data(), T, d_model_, kvw, true);
  linear_backward(dx, grad_sink(v_proj_, shape_.seq), dv_.data(), x_, v_proj_.value.data(), T, d_model_, kvw, true);
  tp_.reduce(dx, T * d_model_);  // the conjugate: x fed every rank's heads
}

}  // namespace moe::rt
