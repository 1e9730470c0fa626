#pragma once
// Launchers of the runtime's CUDA kernels. Each names its CPU twin (the reference its GPU test
// compares with). T is float or __nv_bfloat16 (bf16 activations, fp32 arithmetic inside every
// kernel); router state, losses, weight gradients and optimizer state are always fp32.
// Every launcher queues on `stream` and checks the launch (MOE_KERNEL_CHECK).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace moe::rt::cuda {

using bf16 = __nv_bfloat16;

// --- conversions ---------------------------------------------------------------------------
template <typename Dst, typename Src>
void convert(Dst* dst, const Src* src, int64_t n, cudaStream_t stream);
// dst[i] = value (poisoning buffers in tests, zeroing accumulators).
template <typename T>
void fill(T* dst, float value, int64_t n, cudaStream_t stream);

// --- dense ops (runtime/ops) ---------------------------------------------------------------
// CPU twin: embedding_forward / embedding_backward (dtable fp32, accumulated).
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d, cudaStream_t s);
template <typename T>
void embedding_backward(float* dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d, cudaStream_t s);

// CPU twin: rmsnorm_forward / rmsnorm_backward (dx accumulated, dw fp32 accumulated).
template <typename T>
void rmsnorm_forward(T* y, float* rstd, const T* x, const T* w, int64_t rows, int64_t d, double eps, cudaStream_t s);
template <typename T>
void rmsnorm_backward(T* dx, float* dw, const T* dy, const T* x, const T* w, const float* rstd, int64_t rows,
                      int64_t d, cudaStream_t s);

// CPU twin: rope_forward / rope_backward (in place, x [batch × seq × heads × head_dim]).
template <typename T>
void rope_forward(T* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta, cudaStream_t s);
template <typename T>
void rope_backward(T* dx, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta,
                   cudaStream_t s);

// CPU twin: swiglu_forward / swiglu_backward.
template <typename T>
void swiglu_forward(T* out, const T* a, const T* b, int64_t n, cudaStream_t s);
template <typename T>
void swiglu_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n, cudaStream_t s);

// Attention's fused causal softmax over scores [groups × seq × seq] (in place: probs = softmax(
// scale · scores + causal mask)), and its backward dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
// (dscores may alias dprobs). CPU twin: the softmax inside attention_forward / attention_backward.
template <typename T>
void causal_softmax_forward(T* probs, int64_t groups, int64_t seq, float scale, cudaStream_t s);
template <typename T>
void causal_softmax_backward(T* dscores, const T* dprobs, const T* probs, int64_t groups, int64_t seq, float scale,
                             cudaStream_t s);

// CPU twin: cross_entropy_forward (row_loss[r] = −log softmax; probs may alias logits) and
// cross_entropy_backward (dlogits = dloss · (p − onehot) / rows; may alias probs). probs fp32.
template <typename T>
void cross_entropy_forward(float* probs, float* row_loss, const T* logits, const int32_t* targets, int64_t rows,
                           int64_t vocab, cudaStream_t s);
template <typename T>
void cross_entropy_backward(T* dlogits, const float* probs, const int32_t* targets, int64_t rows, int64_t vocab,
                            float dloss, cudaStream_t s);

// Sum of n fp32 values into out[0] (deterministic: one block). Loss reductions.
void sum_reduce(float* out, const float* in, int64_t n, cudaStream_t s);

// --- router (runtime/moe/router.cpp) -----------------------------------------------------------
// scores [T×E] = softmax or sigmoid of logits, lse [T] = logsumexp. CPU twin: Router::forward.
void router_scores(float* scores, float* lse, const float* logits, int64_t tokens, int64_t E, bool sigmoid,
                   cudaStream_t s);
// x̃ = x ⊙ u, u ~ U(1−ε, 1+ε) from a counter-based hash of (seed, i): noise[i] and noisy[i].
// CPU twin: jitter_reference() in jitter_hash.h (the same hash on the host; Router::forward's
// jitter draws from mt19937 instead, so the GPU run is a different but equally distributed draw).
template <typename T>
void router_jitter(T* noisy, float* noise, const T* x, int64_t n, double eps, uint64_t seed, cudaStream_t s);
// loss_terms[0] = Σ_t lse², mean_p [E] = Σ_t p[t,:] (p normalised for sigmoid). CPU twin: compute_losses.
void router_loss_terms(float* loss_terms, float* mean_p, const float* scores, const float* lse, int64_t tokens,
                       int64_t E, bool sigmoid, cudaStream_t s);
// dlogits [T×E] from dscores (aux gradient added with load_share [E], z gradient) — Router::backward's
// per-token part. aux_coef = loss_scale·α·E/T, z_coef = loss_scale·2β/T.
void router_backward(float* dlogits, const float* dscores, const float* scores, const float* logits,
                     const float* lse, const float* load_share, int64_t tokens, int64_t E, bool sigmoid,
                     float aux_coef, float z_coef, cudaStream_t s);
// bias[e] += rate · sign(mean − load[e]), mean = Σ load / E. CPU twin: MoeLayer::update_balancing_bias.
void bias_balancing_update(float* bias, const int64_t* load, int64_t E, float rate, cudaStream_t s);

// --- token selection (runtime/moe/token_selection.cpp) -----------------------------------------
struct SelectionConfig {
  int64_t num_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
  bool probability_drop = false;  // capacity drop policy: probability (else position)
};
// Token choice: token[a], expert[a], weight[a] for a = t·k + j. CPU twin: select_tokens.
void topk_select(int32_t* token, int32_t* expert, float* weight, const float* scores, const float* bias,
                 int64_t tokens, const SelectionConfig& c, cudaStream_t s);
// route[a] = expert[a] or −1 beyond capacity C (position or probability policy); counts/dropped [E].
// CPU twin: apply_capacity_limit (C ≤ 0: dropless, route = expert).
void capacity_limit(int32_t* route, int64_t* counts, int64_t* dropped, const int32_t* expert, const float* weight,
                    int64_t assignments, int64_t E, int64_t capacity, bool probability, cudaStream_t s);
// Expert choice: each expert takes its top-C tokens (ties: earlier token); a = e·C + rank.
void expert_choice_select(int32_t* token, int32_t* expert, float* weight, const float* scores, int64_t tokens,
                          int64_t E, int64_t C, float scaling, cudaStream_t s);
// dscores += d(weights)/d(scores) · dweight. CPU twin: select_tokens_backward.
void select_backward(float* dscores, const float* scores, const int32_t* token, const int32_t* expert,
                     const float* dweight, int64_t assignments, int64_t tokens, int64_t E, int64_t top_k,
                     bool norm_topk_prob, float scaling, cudaStream_t s);

// --- permutation (runtime/moe/routing_ops.h) ------------------------------------------------------
// CPU twin: expert_histogram (counts zeroed first).
void expert_histogram(int64_t* counts, const int32_t* expert, int64_t assignments, int64_t E, cudaStream_t s);
// CPU twin: exclusive_scan (offsets has n + 1 entries).
void exclusive_scan(int64_t* offsets, const int64_t* counts, int64_t n, cudaStream_t s);
// Stable counting sort. CPU twin: sort_by_expert. row_token[r] = token[row_assignment[r]] too.
void sort_by_expert(int32_t* row_assignment, int32_t* assignment_row, int32_t* row_token, const int32_t* route,
                    const int32_t* token, int64_t assignments, const int64_t* offsets, int64_t E, cudaStream_t s);
// CPU twins: gather_rows, scatter_add_rows, weighted_scatter_add_rows, weighted_gather_rows, row_dots.
template <typename T>
void gather_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s);
template <typename T>
void scatter_add_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s);
template <typename T>
void weighted_scatter_add_rows(T* dst, const T* src, const int32_t* index, const float* weight, int64_t rows,
                               int64_t d, cudaStream_t s);
template <typename T>
void weighted_gather_rows(T* dst, const T* src, const int32_t* index, const float* weight, int64_t rows, int64_t d,
                          cudaStream_t s);
template <typename T>
void row_dots(float* out, const T* a, const T* b, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s);
// Deterministic token-major combine for token choice: y[t] += Σ_j weight[a]·src[assignment_row[a]],
// a = t·k + j, dropped (row −1) skipped. CPU twin: weighted_scatter_add_rows over the handle's rows.
template <typename T>
void combine_token_major(T* y, const T* src, const int32_t* assignment_row, const float* weight, int64_t tokens,
                         int64_t top_k, int64_t d, cudaStream_t s);

// --- optimizer (runtime/model/optimizer.cpp) ---------------------------------------------------
struct AdamWStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0;  // weight_decay 0: no decay
  int64_t step = 1;                                                        // 1-based
};
// p, m, v fp32 (master); `copy` (may be null) receives p in T (the bf16 compute weights).
// CPU twin: AdamW::step.
template <typename T>
void adamw_step(float* p, float* m, float* v, const float* g, T* copy, int64_t n, const AdamWStep& a, cudaStream_t s);

}  // namespace moe::rt::cuda
