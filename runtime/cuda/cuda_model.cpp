// The Mixtral-style decoder on the GPU (see cuda_model.h): MixtralModel's forward and backward,
// op for op, with the CUDA kernels, cuBLAS and CudaMoeLayer.
#include "cuda_model.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>

#include "cuda_attention.h"
#include "cuda_check.h"
#include "error.h"
#include "kernels.h"
#include "layer_kernels.h"
#include "moe_config.h"
#include "param_layout.h"

namespace moe::rt::cuda {

namespace {

template <typename V>
void ensure(DeviceBuffer<V>& b, int64_t n) {
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
}

std::string layer_prefix(int64_t i) {
  return "model.layers." + std::to_string(i) + ".";
}
std::string expert_name(int64_t i, int64_t j, const char* kind) {
  return expert_param_name(i, j, kind);
}

}  // namespace

template <typename T>
struct CudaModel<T>::Layer {
  int64_t index = 0;
  size_t ln1 = 0, ln2 = 0, q = 0, k = 0, v = 0, o = 0;
  // MoE: gate and the first expert's w1/w2/w3 (each a contiguous bank); dense: w1 = gate_proj,
  // w3 = up_proj, w2 = down_proj (the same SwiGLU as one expert).
  bool moe = false, shared = false;
  size_t gate = 0, w1 = 0, w2 = 0, w3 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t f = 0;
  std::unique_ptr<CudaMoeLayer<T>> layer;
  DeviceBuffer<float> bias;  // [E] selection bias
  DeviceBuffer<T> x, normed1, q_, k_, v_, context, probs, attn_out, h, normed2, ffn_out, h1, h3,
      act, dact;
  DeviceBuffer<float> rstd1, rstd2;
};

template <typename T>
CudaModel<T>::CudaModel(MixtralModel& cpu, Blas& blas) : spec_(cpu.spec()), blas_(blas) {
  const ModelSpec& m = spec_.model;
  const int64_t E = m.moe.num_experts;
  std::vector<Param*> ps = cpu.named_params();
  std::map<std::string, Param*> by_name;
  std::vector<ParamInfo> info;
  for (Param* p : ps) {
    by_name[p->name] = p;
    info.push_back({p->name, static_cast<size_t>(p->numel()), AdamW::decays(*p)});
  }
  size_t total = 0;
  for (const ParamSlot& slot : plan_param_layout(info, E, &total))
    params_.push_back({slot.name, slot.offset, slot.numel, slot.decays});
  total_ = static_cast<int64_t>(total);

  // Upload the master weights; gradients and moments start at zero.
  std::vector<float> host(static_cast<size_t>(total_), 0.0f);
  for (const DevParam& dp : params_) {
    const Param* p = by_name.at(dp.name);
    std::copy(p->value.begin(), p->value.end(),
              host.begin() + static_cast<std::ptrdiff_t>(dp.offset));
  }
  master_.resize(host.size()), grad_.resize(host.size()), m_.resize(host.size()),
      v_.resize(host.size());
  norm_sq_.resize(1);
  MOE_CUDA_CHECK(cudaMemcpy(master_.data(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  for (auto* b : {&grad_, &m_, &v_}) MOE_CUDA_CHECK(cudaMemset(b->data(), 0, b->bytes()));
  if constexpr (!std::is_same_v<T, float>) {
    copy_.resize(host.size());
    convert(copy_.data(), master_.data(), total_, nullptr);
  }

  embed_ = index_of("model.embed_tokens.weight");
  norm_ = index_of("model.norm.weight");
  head_ = m.tie_embeddings ? embed_ : index_of("lm_head.weight");
  const std::vector<int64_t> moe_index = cpu.moe_layer_indices();
  const std::vector<MoeLayer*> cpu_moe = cpu.moe_layers();
  const MoeConfig moe_config = MoeConfig::from_spec(spec_);
  for (int64_t i = 0; i < m.n_layers; ++i) {
    auto L = std::make_unique<Layer>();
    const std::string pre = layer_prefix(i);
    L->index = i;
    L->ln1 = index_of(pre + "input_layernorm.weight");
    L->ln2 = index_of(pre + "post_attention_layernorm.weight");
    L->q = index_of(pre + "self_attn.q_proj.weight");
    L->k = index_of(pre + "self_attn.k_proj.weight");
    L->v = index_of(pre + "self_attn.v_proj.weight");
    L->o = index_of(pre + "self_attn.o_proj.weight");
    const auto pos = std::find(moe_index.begin(), moe_index.end(), i);
    L->moe = pos != moe_index.end();
    if (L->moe) {
      L->gate = index_of(pre + "block_sparse_moe.gate.weight");
      L->w1 = index_of(expert_name(i, 0, "w1"));
      L->w2 = index_of(expert_name(i, 0, "w2"));
      L->w3 = index_of(expert_name(i, 0, "w3"));
      L->f = m.moe.d_expert;
      L->shared = moe_config.d_shared > 0;
      if (L->shared) {
        L->s1 = index_of(pre + "block_sparse_moe.shared_expert.w1.weight");
        L->s2 = index_of(pre + "block_sparse_moe.shared_expert.w2.weight");
        L->s3 = index_of(pre + "block_sparse_moe.shared_expert.w3.weight");
      }
      L->layer = std::make_unique<CudaMoeLayer<T>>(moe_config, blas_);
      const std::vector<float>& bias =
          cpu_moe[static_cast<size_t>(pos - moe_index.begin())]->balancing_bias();
      L->bias.resize(bias.size());
      MOE_CUDA_CHECK(
          cudaMemcpy(L->bias.data(), bias.data(), bias.size() * 4, cudaMemcpyHostToDevice));
    } else {
      L->w1 = index_of(pre + "mlp.gate_proj.weight");
      L->w3 = index_of(pre + "mlp.up_proj.weight");
      L->w2 = index_of(pre + "mlp.down_proj.weight");
      L->f = m.d_ff > 0 ? m.d_ff : m.moe.d_expert;
    }
    layers_.push_back(std::move(L));
  }
  MOE_CUDA_CHECK(cudaDeviceSynchronize());
}

template <typename T>
CudaModel<T>::~CudaModel() = default;

template <typename T>
size_t CudaModel<T>::index_of(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].name == name) return i;
  throw Error("cuda model: no parameter " + name);
}

template <typename T>
const T* CudaModel<T>::w(size_t i) const {
  if constexpr (std::is_same_v<T, float>)
    return master_.data() + params_[i].offset;
  else
    return copy_.data() + params_[i].offset;
}

template <typename T>
float* CudaModel<T>::g(size_t i) const {
  return const_cast<float*>(grad_.data()) + params_[i].offset;
}

template <typename T>
ForwardResult CudaModel<T>::forward(const int32_t* tokens, const int32_t* targets, int64_t batch,
                                    const CudaMoeOptions& options, std::mt19937_64* rng) {
  const ModelSpec& m = spec_.model;
  const cudaStream_t s = blas_.stream();
  batch_ = batch, seq_ = m.seq_len;
  const int64_t T_ = batch_ * seq_, d = m.d_model, V = m.vocab_size, H = m.n_heads,
                KV = m.n_kv_heads;
  const int64_t hd = m.resolved_head_dim(), qw = H * hd, kvw = KV * hd;
  for (int64_t t = 0; t < T_; ++t)
    if (tokens[t] < 0 || tokens[t] >= V || (targets && (targets[t] < 0 || targets[t] >= V)))
      throw Error("model.vocab_size: a token at position " + std::to_string(t) + " is outside 0.." +
                  std::to_string(V - 1));
  loss_scale_ = options.loss_scale;
  has_targets_ = targets != nullptr;
  ensure(tokens_, T_), ensure(targets_, T_);
  MOE_CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), tokens, static_cast<size_t>(T_) * 4,
                                 cudaMemcpyHostToDevice, s));
  if (targets)
    MOE_CUDA_CHECK(cudaMemcpyAsync(targets_.data(), targets, static_cast<size_t>(T_) * 4,
                                   cudaMemcpyHostToDevice, s));

  ForwardResult result;
  const AttentionDims dims{batch_, seq_, H, KV, hd};
  ensure(final_in_, T_ * d);
  ensure(layers_[0]->x, T_ * d);
  embedding_forward<T>(layers_[0]->x.data(), tokens_.data(), w(embed_), T_, d, s);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& L = *layers_[i];
    for (auto* b : {&L.normed1, &L.attn_out, &L.h, &L.normed2, &L.ffn_out}) ensure(*b, T_ * d);
    ensure(L.q_, T_ * qw), ensure(L.context, T_ * qw), ensure(L.k_, T_ * kvw),
        ensure(L.v_, T_ * kvw);
    ensure(L.probs, batch_ * H * seq_ * seq_);
    ensure(L.rstd1, T_), ensure(L.rstd2, T_);
    rmsnorm_forward<T>(L.normed1.data(), L.rstd1.data(), L.x.data(), w(L.ln1), T_, d, m.norm_eps,
                       s);
    gemm<T, T>(blas_, RowMajorGemm{false, true, T_, qw, d, d, d, qw}, 1.0f, L.normed1.data(),
               w(L.q), 0.0f, L.q_.data());
    gemm<T, T>(blas_, RowMajorGemm{false, true, T_, kvw, d, d, d, kvw}, 1.0f, L.normed1.data(),
               w(L.k), 0.0f, L.k_.data());
    gemm<T, T>(blas_, RowMajorGemm{false, true, T_, kvw, d, d, d, kvw}, 1.0f, L.normed1.data(),
               w(L.v), 0.0f, L.v_.data());
    rope_forward<T>(L.q_.data(), batch_, seq_, H, hd, m.rope_theta, s);
    rope_forward<T>(L.k_.data(), batch_, seq_, KV, hd, m.rope_theta, s);
    attention_forward<T>(blas_, L.context.data(), L.probs.data(), L.q_.data(), L.k_.data(),
                         L.v_.data(), dims);
    gemm<T, T>(blas_, RowMajorGemm{false, true, T_, d, qw, qw, qw, d}, 1.0f, L.context.data(),
               w(L.o), 0.0f, L.attn_out.data());
    add<T>(L.h.data(), L.x.data(), L.attn_out.data(), T_ * d, s);
    rmsnorm_forward<T>(L.normed2.data(), L.rstd2.data(), L.h.data(), w(L.ln2), T_, d, m.norm_eps,
                       s);
    if (L.moe) {
      CudaMoeWeights<T> mw{w(L.gate), {w(L.w1), w(L.w2), w(L.w3), d, L.f}, {}};
      if (L.shared)
        mw.shared = {w(L.s1), w(L.s2), w(L.s3), d, MoeConfig::from_spec(spec_).d_shared};
      CudaMoeOptions lo = options;
      const bool jitter = options.training && !options.force_dropless && MoeConfig::from_spec(spec_).jitter > 0.0;
      lo.jitter_seed = rng && jitter ? (*rng)()  // the CPU router's draw
                                     : options.jitter_seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1));
      L.layer->forward(mw, L.normed2.data(), L.ffn_out.data(), T_, lo, L.bias.data());
      const RoutingStats& st = L.layer->stats();
      result.aux_loss += st.aux_loss;
      result.z_loss += st.z_loss;
      result.routing.push_back(LayerRouting{L.index, st});
    } else {
      for (auto* b : {&L.h1, &L.h3, &L.act, &L.dact}) ensure(*b, T_ * L.f);
      expert_ffn_forward<T>(blas_, ExpertBank<T>{w(L.w1), w(L.w2), w(L.w3), d, L.f},
                            L.normed2.data(), std::vector<int64_t>{0, T_},
                            ExpertActivations<T>{L.h1.data(), L.h3.data(), L.act.data()},
                            L.ffn_out.data());
    }
    DeviceBuffer<T>& next = i + 1 < layers_.size() ? layers_[i + 1]->x : final_in_;
    ensure(next, T_ * d);
    add<T>(next.data(), L.h.data(), L.ffn_out.data(), T_ * d, s);
  }
  ensure(final_norm_, T_ * d), ensure(final_rstd_, T_), ensure(logits_, T_ * V);
  rmsnorm_forward<T>(final_norm_.data(), final_rstd_.data(), final_in_.data(), w(norm_), T_, d,
                     m.norm_eps, s);
  gemm<T, T>(blas_, RowMajorGemm{false, true, T_, V, d, d, d, V}, 1.0f, final_norm_.data(),
             w(head_), 0.0f, logits_.data());
  if (targets) {
    ensure(probs_, T_ * V), ensure(row_loss_, T_), ensure(loss_sum_, 1);
    cross_entropy_forward<T>(probs_.data(), row_loss_.data(), logits_.data(), targets_.data(), T_,
                             V, s);
    sum_reduce(loss_sum_.data(), row_loss_.data(), T_, s);
    float sum = 0;
    MOE_CUDA_CHECK(cudaMemcpyAsync(&sum, loss_sum_.data(), 4, cudaMemcpyDeviceToHost, s));
    MOE_CUDA_CHECK(cudaStreamSynchronize(s));
    result.lm_loss = static_cast<double>(sum) / static_cast<double>(T_);
  }
  result.loss = result.lm_loss + result.aux_loss + result.z_loss;
  return result;
}

template <typename T>
void CudaModel<T>::backward() {
  if (!has_targets_) throw Error("cuda model: backward() needs a forward() with targets");
  const ModelSpec& m = spec_.model;
  const cudaStream_t s = blas_.stream();
  const int64_t T_ = batch_ * seq_, d = m.d_model, V = m.vocab_size, H = m.n_heads,
                KV = m.n_kv_heads;
  const int64_t hd = m.resolved_head_dim(), qw = H * hd, kvw = KV * hd;
  const AttentionDims dims{batch_, seq_, H, KV, hd};
  for (auto* b : {&dres_, &dh_, &dnormed_}) ensure(*b, T_ * d);
  ensure(dq_, T_ * qw), ensure(dcontext_, T_ * qw), ensure(dk_, T_ * kvw), ensure(dv_, T_ * kvw);
  ensure(attn_scratch_, batch_ * H * seq_ * seq_);
  const size_t row_bytes = static_cast<size_t>(T_ * d) * sizeof(T);

  // Loss → logits (in place) → lm_head and the final norm.
  cross_entropy_backward<T>(logits_.data(), probs_.data(), targets_.data(), T_, V,
                            static_cast<float>(loss_scale_), s);
  gemm<T, float>(blas_, RowMajorGemm{true, false, V, d, T_, V, d, d}, 1.0f, logits_.data(),
                 final_norm_.data(), 1.0f, g(head_));
  gemm<T, T>(blas_, RowMajorGemm{false, false, T_, d, V, V, d, d}, 1.0f, logits_.data(), w(head_),
             0.0f, dnormed_.data());
  MOE_CUDA_CHECK(cudaMemsetAsync(dres_.data(), 0, row_bytes, s));
  rmsnorm_backward<T>(dres_.data(), g(norm_), dnormed_.data(), final_in_.data(), w(norm_),
                      final_rstd_.data(), T_, d, s);

  for (size_t i = layers_.size(); i-- > 0;) {
    Layer& L = *layers_[i];
    // out = h + ffn(norm2(h)):  dh = dout + norm2ᵀ(ffnᵀ(dout))
    if (L.moe) {
      CudaMoeWeights<T> mw{w(L.gate), {w(L.w1), w(L.w2), w(L.w3), d, L.f}, {}};
      CudaMoeGrads mg{g(L.gate), {g(L.w1), g(L.w2), g(L.w3)}, {}};
      if (L.shared) {
        mw.shared = {w(L.s1), w(L.s2), w(L.s3), d, MoeConfig::from_spec(spec_).d_shared};
        mg.shared = {g(L.s1), g(L.s2), g(L.s3)};
      }
      L.layer->backward(mw, mg, dres_.data(), dnormed_.data());
    } else {
      expert_ffn_backward<T>(blas_, ExpertBank<T>{w(L.w1), w(L.w2), w(L.w3), d, L.f},
                             ExpertBankGrads{g(L.w1), g(L.w2), g(L.w3)}, L.normed2.data(),
                             std::vector<int64_t>{0, T_},
                             ExpertActivations<T>{L.h1.data(), L.h3.data(), L.act.data()},
                             dres_.data(), L.dact.data(), dnormed_.data());
    }
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(dh_.data(), dres_.data(), row_bytes, cudaMemcpyDeviceToDevice, s));
    rmsnorm_backward<T>(dh_.data(), g(L.ln2), dnormed_.data(), L.h.data(), w(L.ln2), L.rstd2.data(),
                        T_, d, s);
    // h = x + attn(norm1(x)):  dx = dh + norm1ᵀ(attnᵀ(dh))
    gemm<T, T>(blas_, RowMajorGemm{false, false, T_, qw, d, d, qw, qw}, 1.0f, dh_.data(), w(L.o),
               0.0f, dcontext_.data());
    gemm<T, float>(blas_, RowMajorGemm{true, false, d, qw, T_, d, qw, qw}, 1.0f, dh_.data(),
                   L.context.data(), 1.0f, g(L.o));
    attention_backward<T>(blas_, dq_.data(), dk_.data(), dv_.data(), attn_scratch_.data(),
                          dcontext_.data(), L.probs.data(), L.q_.data(), L.k_.data(), L.v_.data(),
                          dims);
    rope_backward<T>(dq_.data(), batch_, seq_, H, hd, m.rope_theta, s);
    rope_backward<T>(dk_.data(), batch_, seq_, KV, hd, m.rope_theta, s);
    gemm<T, T>(blas_, RowMajorGemm{false, false, T_, d, qw, qw, d, d}, 1.0f, dq_.data(), w(L.q),
               0.0f, dnormed_.data());
    gemm<T, T>(blas_, RowMajorGemm{false, false, T_, d, kvw, kvw, d, d}, 1.0f, dk_.data(), w(L.k),
               1.0f, dnormed_.data());
    gemm<T, T>(blas_, RowMajorGemm{false, false, T_, d, kvw, kvw, d, d}, 1.0f, dv_.data(), w(L.v),
               1.0f, dnormed_.data());
    gemm<T, float>(blas_, RowMajorGemm{true, false, qw, d, T_, qw, d, d}, 1.0f, dq_.data(),
                   L.normed1.data(), 1.0f, g(L.q));
    gemm<T, float>(blas_, RowMajorGemm{true, false, kvw, d, T_, kvw, d, d}, 1.0f, dk_.data(),
                   L.normed1.data(), 1.0f, g(L.k));
    gemm<T, float>(blas_, RowMajorGemm{true, false, kvw, d, T_, kvw, d, d}, 1.0f, dv_.data(),
                   L.normed1.data(), 1.0f, g(L.v));
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(dres_.data(), dh_.data(), row_bytes, cudaMemcpyDeviceToDevice, s));
    rmsnorm_backward<T>(dres_.data(), g(L.ln1), dnormed_.data(), L.x.data(), w(L.ln1),
                        L.rstd1.data(), T_, d, s);
  }
  embedding_backward<T>(g(embed_), dres_.data(), tokens_.data(), T_, d, s);
  has_targets_ = false;  // one backward per forward: the logits are now their gradient
}

template <typename T>
void CudaModel<T>::zero_grad() {
  MOE_CUDA_CHECK(cudaMemsetAsync(grad_.data(), 0, grad_.bytes(), blas_.stream()));
}

template <typename T>
double CudaModel<T>::clip_grad_norm(double max_norm) {
  const cudaStream_t s = blas_.stream();
  sum_squares(norm_sq_.data(), grad_.data(), total_, s);  // alignment gaps hold zeros
  float sq = 0;
  MOE_CUDA_CHECK(cudaMemcpyAsync(&sq, norm_sq_.data(), 4, cudaMemcpyDeviceToHost, s));
  MOE_CUDA_CHECK(cudaStreamSynchronize(s));
  const double norm = std::sqrt(static_cast<double>(sq));
  if (max_norm > 0 && std::isfinite(norm)) {  // torch: coef = max_norm / (norm + 1e-6) when < 1
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) scale(grad_.data(), static_cast<float>(coef), total_, s);
  }
  return norm;
}

template <typename T>
void CudaModel<T>::adamw_step(const AdamWConfig& c, double lr, int64_t step) {
  for (const DevParam& p : params_) {
    AdamWStep a;
    a.lr = lr, a.beta1 = c.beta1, a.beta2 = c.beta2, a.eps = c.eps,
    a.weight_decay = p.decays ? c.weight_decay : 0.0;
    a.step = step;
    T* copy = nullptr;
    if constexpr (!std::is_same_v<T, float>) copy = copy_.data() + p.offset;
    cuda::adamw_step<T>(master_.data() + p.offset, m_.data() + p.offset, v_.data() + p.offset,
                        grad_.data() + p.offset, copy, static_cast<int64_t>(p.numel), a,
                        blas_.stream());
  }
}

template <typename T>
void CudaModel<T>::update_balancing_bias(const std::vector<std::vector<int64_t>>& counts) {
  size_t n = 0;
  for (auto& L : layers_)
    if (L->moe && n < counts.size()) L->layer->update_balancing_bias(L->bias.data(), counts[n++]);
}

template <typename T>
void CudaModel<T>::download_params(MixtralModel& cpu) const {
  std::vector<float> host(static_cast<size_t>(total_));
  MOE_CUDA_CHECK(cudaStreamSynchronize(blas_.stream()));
  MOE_CUDA_CHECK(cudaMemcpy(host.data(), master_.data(), host.size() * 4, cudaMemcpyDeviceToHost));
  for (Param* p : cpu.named_params()) {
    const DevParam& dp = params_[index_of(p->name)];
    std::copy_n(host.begin() + static_cast<std::ptrdiff_t>(dp.offset), dp.numel, p->value.begin());
  }
}

template <typename T>
void CudaModel<T>::download_state(MixtralModel& cpu, AdamW& optimizer, int64_t steps) const {
  download_params(cpu);
  std::vector<float> m(static_cast<size_t>(total_)), v(m.size());
  MOE_CUDA_CHECK(cudaMemcpy(m.data(), m_.data(), m.size() * 4, cudaMemcpyDeviceToHost));
  MOE_CUDA_CHECK(cudaMemcpy(v.data(), v_.data(), v.size() * 4, cudaMemcpyDeviceToHost));
  const auto& params = optimizer.params();
  for (size_t i = 0; i < params.size(); ++i) {
    const DevParam& dp = params_[index_of(params[i]->name)];
    const auto at = static_cast<std::ptrdiff_t>(dp.offset);
    optimizer.exp_avg()[i].assign(m.begin() + at,
                                  m.begin() + at + static_cast<std::ptrdiff_t>(dp.numel));
    optimizer.exp_avg_sq()[i].assign(v.begin() + at,
                                     v.begin() + at + static_cast<std::ptrdiff_t>(dp.numel));
  }
  optimizer.set_steps(steps);
  const std::vector<MoeLayer*> cpu_moe = cpu.moe_layers();
  size_t n = 0;
  for (const auto& L : layers_) {
    if (!L->moe || n >= cpu_moe.size()) continue;
    std::vector<float>& bias = cpu_moe[n++]->balancing_bias();
    MOE_CUDA_CHECK(
        cudaMemcpy(bias.data(), L->bias.data(), bias.size() * 4, cudaMemcpyDeviceToHost));
  }
}

template <typename T>
void CudaModel<T>::download_grads(MixtralModel& cpu) const {
  std::vector<float> host(static_cast<size_t>(total_));
  MOE_CUDA_CHECK(cudaStreamSynchronize(blas_.stream()));
  MOE_CUDA_CHECK(cudaMemcpy(host.data(), grad_.data(), host.size() * 4, cudaMemcpyDeviceToHost));
  for (Param* p : cpu.named_params()) {
    const DevParam& dp = params_[index_of(p->name)];
    std::copy_n(host.begin() + static_cast<std::ptrdiff_t>(dp.offset), dp.numel, p->grad.begin());
  }
}

template <typename T>
std::vector<int64_t> CudaModel<T>::moe_layer_indices() const {
  std::vector<int64_t> out;
  for (const auto& L : layers_)
    if (L->moe) out.push_back(L->index);
  return out;
}

template class CudaModel<float>;
template class CudaModel<__nv_bfloat16>;

}  // namespace moe::rt::cuda
