// The MoE block on the GPU (see cuda_moe_layer.h): MoeCompute's steps with the CUDA kernels.
#include "cuda_moe_layer.h"

#include <cuda_bf16.h>

#include <string>
#include <type_traits>

#include "cuda_check.h"
#include "error.h"
#include "layer_kernels.h"

namespace moe::rt::cuda {

namespace {

template <typename V>
void ensure(DeviceBuffer<V>& b, size_t n) {
  if (b.size() < n) b.resize(n);
}

template <typename V>
std::vector<V> read_back(const V* dev, size_t n, cudaStream_t s) {
  std::vector<V> host(n);
  if (n > 0) MOE_CUDA_CHECK(cudaMemcpyAsync(host.data(), dev, n * sizeof(V), cudaMemcpyDeviceToHost, s));
  return host;  // valid after the stream is synchronised
}

}  // namespace

template <typename T>
CudaMoeLayer<T>::CudaMoeLayer(const MoeConfig& config, Blas& blas) : config_(config), blas_(blas) {
  config_.validate();
  ensure(zero_bias_, static_cast<size_t>(config_.num_experts));
  MOE_CUDA_CHECK(cudaMemsetAsync(zero_bias_.data(), 0, zero_bias_.bytes(), blas_.stream()));
}

template <typename T>
CudaMoeLayer<T>::~CudaMoeLayer() = default;

template <typename T>
template <typename V>
V* CudaMoeLayer<T>::buf(const char* name) const {
  return reinterpret_cast<V*>(const_cast<char*>(arena_.data()) + buffers_.offset_of(name));
}

template <typename T>
void CudaMoeLayer<T>::forward(const CudaMoeWeights<T>& w, const T* x, T* y, int64_t tokens,
                              const CudaMoeOptions& options, const float* bias) {
  const cudaStream_t s = blas_.stream();
  const MoeConfig& c = config_;
  const int64_t E = c.num_experts, d = c.d_model, k = c.top_k;
  plan_ = plan_moe_layer(c, tokens, options.force_dropless, sizeof(T));
  buffers_ = plan_moe_buffers(plan_.shape);
  ensure(arena_, buffers_.total);
  const int64_t T_ = tokens, A = plan_.assignments, R = plan_.expert_rows;
  loss_scale_ = options.loss_scale;
  stats_unrouted_valid_ = false;

  // Router input: x, or x ⊙ u with u from the counter hash (training only).
  ensure(x_, static_cast<size_t>(T_ * d));
  MOE_CUDA_CHECK(cudaMemcpyAsync(x_.data(), x, static_cast<size_t>(T_ * d) * sizeof(T), cudaMemcpyDeviceToDevice, s));
  jittered_ = options.training && !options.force_dropless && c.jitter > 0.0;
  const T* input = x_.data();
  if (jittered_) {
    ensure(noisy_, static_cast<size_t>(T_ * d));
    ensure(noise_, static_cast<size_t>(T_ * d));
    router_jitter(noisy_.data(), noise_.data(), x_.data(), T_ * d, c.jitter, options.jitter_seed, s);
    input = noisy_.data();
  }
  float* logits = buf<float>("logits");
  float* scores = buf<float>("scores");
  float* lse = buf<float>("lse");
  gemm<T, float>(blas_, RowMajorGemm{false, true, T_, E, d, d, d, E}, 1.0f, input, w.gate, 0.0f, logits);
  router_scores(scores, lse, logits, T_, E, c.score == ScoreFn::sigmoid, s);

  // Selection.
  int32_t* token = buf<int32_t>("assign_token");
  int32_t* expert = buf<int32_t>("assign_expert");
  int32_t* route = buf<int32_t>("route");
  float* weight = buf<float>("gate_weight");
  int64_t* counts = buf<int64_t>("counts");
  int64_t* dropped = buf<int64_t>("dropped");
  if (plan_.expert_choice()) {
    expert_choice_select(token, expert, weight, scores, T_, E, plan_.capacity,
                         static_cast<float>(c.routed_scaling_factor), s);
    MOE_CUDA_CHECK(cudaMemcpyAsync(route, expert, static_cast<size_t>(A) * 4, cudaMemcpyDeviceToDevice, s));
    expert_histogram(counts, route, A, E, s);
    MOE_CUDA_CHECK(cudaMemsetAsync(dropped, 0, static_cast<size_t>(E) * 8, s));
  } else {
    const SelectionConfig sc{E, k, c.n_group, c.topk_group, c.norm_topk_prob,
                             static_cast<float>(c.routed_scaling_factor), c.drop_policy == DropPolicy::probability};
    topk_select(token, expert, weight, scores, bias ? bias : zero_bias_.data(), T_, sc, s);
    capacity_limit(route, counts, dropped, expert, weight, A, E, plan_.mode == LayerMode::capacity ? plan_.capacity : 0,
                   sc.probability_drop, s);
  }
  // Loss terms (Σ lse², column sums of p) while the counts travel.
  ensure(terms_, 1);
  ensure(sum_p_, static_cast<size_t>(E));
  router_loss_terms(terms_.data(), sum_p_.data(), scores, lse, T_, E, c.score == ScoreFn::sigmoid, s);

  // Permutation: row offsets fixed by the plan, or the scan of the counts (dropless).
  int64_t* offsets = buf<int64_t>("offsets");
  if (plan_.mode == LayerMode::dropless) {
    exclusive_scan(offsets, counts, E, s);
  } else {
    MOE_CUDA_CHECK(cudaMemcpyAsync(offsets, plan_.fixed_offsets.data(), static_cast<size_t>(E + 1) * 8,
                                   cudaMemcpyHostToDevice, s));
  }
  int32_t* row_assignment = buf<int32_t>("row_assignment");
  int32_t* row_token = buf<int32_t>("row_token");
  int32_t* assignment_row = buf<int32_t>("assignment_row");
  if (plan_.mode == LayerMode::capacity) {  // padding rows stay −1
    MOE_CUDA_CHECK(cudaMemsetAsync(row_assignment, 0xff, static_cast<size_t>(R) * 4, s));
    MOE_CUDA_CHECK(cudaMemsetAsync(row_token, 0xff, static_cast<size_t>(R) * 4, s));
  }
  sort_by_expert(row_assignment, assignment_row, row_token, route, token, A, offsets, E, s);

  // Counts, offsets and loss terms to the host: the one synchronisation of the layer.
  auto h_counts = read_back(counts, static_cast<size_t>(E), s);
  auto h_dropped = read_back(dropped, static_cast<size_t>(E), s);
  auto h_offsets = read_back(offsets, static_cast<size_t>(E + 1), s);
  auto h_terms = read_back(terms_.data(), 1, s);
  auto h_sum_p = read_back(sum_p_.data(), static_cast<size_t>(E), s);
  MOE_CUDA_CHECK(cudaStreamSynchronize(s));
  offsets_ = h_offsets;
  if (offsets_.back() > R)
    throw Error("cuda moe layer: " + std::to_string(offsets_.back()) + " routed rows exceed the plan's " +
                std::to_string(R));

  T* expert_in = buf<T>("expert_in");
  T* expert_out = buf<T>("expert_out");
  gather_rows_masked(expert_in, x_.data(), row_token, plan_.mode == LayerMode::dropless ? offsets_.back() : R, d, s);
  const ExpertActivations<T> acts{buf<T>("h1"), buf<T>("h3"), buf<T>("act")};
  // The GEMMs see the plan's rows: padded slots in capacity mode (zero in), compact when dropless.
  const std::vector<int64_t>& gemm_offsets = plan_.mode == LayerMode::dropless ? offsets_ : plan_.fixed_offsets;
  paths_ = expert_ffn_forward(blas_, w.experts, expert_in, gemm_offsets, acts, expert_out, options.allow_grouped_gemm);

  // y = shared(x) + Σ weight · expert output.
  if (c.d_shared > 0) {
    const size_t n = static_cast<size_t>(T_ * c.d_shared);
    ensure(shared_h1_, n), ensure(shared_h3_, n), ensure(shared_act_, n), ensure(shared_dact_, n);
    expert_ffn_forward(blas_, w.shared, x_.data(), std::vector<int64_t>{0, T_},
                       ExpertActivations<T>{shared_h1_.data(), shared_h3_.data(), shared_act_.data()}, y);
  } else {
    MOE_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(T_ * d) * sizeof(T), s));
  }
  if (plan_.expert_choice()) {
    scatter_add_rows_masked(y, expert_out, row_token, row_assignment, weight, R, d, s);
  } else {
    combine_token_major(y, expert_out, assignment_row, weight, T_, k, d, s);
  }

  // Stats and losses as the CPU layer reports them.
  stats_.counts = routing_counts(plan_, h_counts);
  stats_.dropped = h_dropped;
  const std::vector<float> share = load_share(stats_.counts);
  stats_.aux_loss = aux_loss_from_terms(c, share, h_sum_p, T_);
  stats_.z_loss = z_loss_from_terms(c, static_cast<double>(h_terms[0]), T_);
  stats_.tokens_without_expert = 0;
  ensure(share_dev_, static_cast<size_t>(E));
  MOE_CUDA_CHECK(cudaMemcpyAsync(share_dev_.data(), share.data(), static_cast<size_t>(E) * 4, cudaMemcpyHostToDevice, s));
  MOE_CUDA_CHECK(cudaStreamSynchronize(s));  // `share` is pageable host memory about to go
}

template <typename T>
void CudaMoeLayer<T>::backward(const CudaMoeWeights<T>& w, const CudaMoeGrads& g, const T* dy, T* dx) {
  const cudaStream_t s = blas_.stream();
  const MoeConfig& c = config_;
  const int64_t E = c.num_experts, d = c.d_model, k = c.top_k;
  const int64_t T_ = plan_.tokens, A = plan_.assignments, R = plan_.expert_rows;
  if (T_ <= 0) throw Error("cuda moe layer: backward before forward");
  const int32_t* token = buf<int32_t>("assign_token");
  const int32_t* expert = buf<int32_t>("assign_expert");
  const float* weight = buf<float>("gate_weight");
  const int32_t* row_assignment = buf<int32_t>("row_assignment");
  const int32_t* row_token = buf<int32_t>("row_token");
  const int32_t* assignment_row = buf<int32_t>("assignment_row");
  float* dweight = buf<float>("dgate_weight");
  T* expert_in = buf<T>("expert_in");
  T* expert_out = buf<T>("expert_out");
  T* d_expert_out = buf<T>("d_expert_out");
  T* d_expert_in = buf<T>("d_expert_in");
  const int64_t rows = plan_.mode == LayerMode::dropless ? offsets_.back() : R;

  // Combine backward: the gate weights' gradient and the gradient reaching each expert row.
  assignment_dots(dweight, expert_out, dy, assignment_row, token, A, d, s);
  combine_backward_rows(d_expert_out, dy, row_token, row_assignment, weight, rows, d, s);

  // Experts.
  const ExpertActivations<T> acts{buf<T>("h1"), buf<T>("h3"), buf<T>("act")};
  const std::vector<int64_t>& gemm_offsets = plan_.mode == LayerMode::dropless ? offsets_ : plan_.fixed_offsets;
  const ExpertFfnPaths bp = expert_ffn_backward(blas_, w.experts, g.experts, expert_in, gemm_offsets, acts,
                                                d_expert_out, buf<T>("d_act"), d_expert_in);
  paths_.backward_data = bp.backward_data, paths_.backward_weight = bp.backward_weight;

  // dx = shared expert's input gradient (or 0) + the expert rows returned to their tokens.
  if (c.d_shared > 0) {
    expert_ffn_backward(blas_, w.shared, g.shared, x_.data(), std::vector<int64_t>{0, T_},
                        ExpertActivations<T>{shared_h1_.data(), shared_h3_.data(), shared_act_.data()}, dy,
                        shared_dact_.data(), dx);
  } else {
    MOE_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<size_t>(T_ * d) * sizeof(T), s));
  }
  if (plan_.expert_choice()) {
    scatter_add_rows_masked(dx, d_expert_in, row_token, nullptr, nullptr, rows, d, s);
  } else {  // deterministic: each token sums its own k rows in order
    if (ones_.size() < static_cast<size_t>(A)) {
      ones_.resize(static_cast<size_t>(A));
      fill(ones_.data(), 1.0f, A, s);
    }
    combine_token_major(dx, d_expert_in, assignment_row, ones_.data(), T_, k, d, s);
  }

  // Router: selection backward → scores/logits (with the aux and z gradients) → gate and input.
  float* dscores = buf<float>("dscores");
  MOE_CUDA_CHECK(cudaMemsetAsync(dscores, 0, static_cast<size_t>(T_ * E) * 4, s));
  select_backward(dscores, buf<float>("scores"), token, expert, dweight, A, T_, E, plan_.expert_choice() ? 0 : k,
                  c.norm_topk_prob, static_cast<float>(c.routed_scaling_factor), s);
  ensure(dlogits_, static_cast<size_t>(T_ * E));
  const RouterBackwardCoefs coefs = router_backward_coefs(c, T_, loss_scale_);
  router_backward(dlogits_.data(), dscores, buf<float>("scores"), buf<float>("logits"), buf<float>("lse"),
                  share_dev_.data(), T_, E, c.score == ScoreFn::sigmoid, coefs.aux, coefs.z, s);
  const T* dlog = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    dlog = dlogits_.data();
  } else {
    ensure(dlogits_t_, static_cast<size_t>(T_ * E));
    convert(dlogits_t_.data(), dlogits_.data(), T_ * E, s);
    dlog = dlogits_t_.data();
  }
  const T* input = jittered_ ? noisy_.data() : x_.data();
  gemm<T, float>(blas_, RowMajorGemm{true, false, E, d, T_, E, d, d}, 1.0f, dlog, input, 1.0f, g.gate);
  if (!jittered_) {
    gemm<T, T>(blas_, RowMajorGemm{false, false, T_, d, E, E, d, d}, 1.0f, dlog, w.gate, 1.0f, dx);
  } else {  // dx += (dlogits·W) ⊙ u
    ensure(dnoisy_, static_cast<size_t>(T_ * d));
    gemm<T, T>(blas_, RowMajorGemm{false, false, T_, d, E, E, d, d}, 1.0f, dlog, w.gate, 0.0f, dnoisy_.data());
    mul_add(dx, dnoisy_.data(), noise_.data(), T_ * d, s);
  }
}

template <typename T>
const RoutingStats& CudaMoeLayer<T>::stats() {
  if (!stats_unrouted_valid_ && plan_.assignments > 0) {
    const cudaStream_t s = blas_.stream();
    auto token = read_back(buf<int32_t>("assign_token"), static_cast<size_t>(plan_.assignments), s);
    auto row = read_back(buf<int32_t>("assignment_row"), static_cast<size_t>(plan_.assignments), s);
    MOE_CUDA_CHECK(cudaStreamSynchronize(s));
    stats_.tokens_without_expert = count_unrouted_tokens(token, row, plan_.tokens);
    stats_unrouted_valid_ = true;
  }
  return stats_;
}

template <typename T>
const float* CudaMoeLayer<T>::scores() const { return buf<float>("scores"); }
template <typename T>
const int32_t* CudaMoeLayer<T>::assignment_expert() const { return buf<int32_t>("assign_expert"); }
template <typename T>
const int32_t* CudaMoeLayer<T>::assignment_route() const { return buf<int32_t>("route"); }
template <typename T>
const float* CudaMoeLayer<T>::gate_weights() const { return buf<float>("gate_weight"); }

template <typename T>
void CudaMoeLayer<T>::update_balancing_bias(float* bias, const std::vector<int64_t>& load) {
  if (!config_.bias_balancing) return;
  const int64_t E = config_.num_experts;
  if (static_cast<int64_t>(load.size()) != E)
    throw Error("routing.bias_balancing: load has " + std::to_string(load.size()) + " entries, expected " +
                std::to_string(E));
  ensure(load_dev_, static_cast<size_t>(E));
  MOE_CUDA_CHECK(cudaMemcpyAsync(load_dev_.data(), load.data(), static_cast<size_t>(E) * 8, cudaMemcpyHostToDevice,
                                 blas_.stream()));
  bias_balancing_update(bias, load_dev_.data(), E, static_cast<float>(config_.bias_update_rate), blas_.stream());
  MOE_CUDA_CHECK(cudaStreamSynchronize(blas_.stream()));  // `load` is pageable caller memory
}

template class CudaMoeLayer<float>;
template class CudaMoeLayer<__nv_bfloat16>;

}  // namespace moe::rt::cuda
