// Attention forward/backward from cuBLAS GEMMs and the causal softmax kernels (see attention.h).
#include "cuda_attention.h"

#include <cmath>

#include "cuda_check.h"
#include "error.h"
#include "kernels.h"

namespace moe::rt::cuda {

namespace {

void check(const AttentionDims& s) {
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    throw Error("attention: heads (" + std::to_string(s.heads) + ") must be a multiple of kv_heads (" +
                std::to_string(s.kv_heads) + ")");
}

}  // namespace

template <typename T>
void attention_forward(Blas& blas, T* out, T* probs, const T* q, const T* k, const T* v, const AttentionDims& s) {
  check(s);
  const int64_t S = s.seq, H = s.heads, KV = s.kv_heads, hd = s.head_dim, G = H / KV;
  const int64_t qld = H * hd, kld = KV * hd;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < KV; ++j) {
      const int64_t h0 = j * G;
      const T* qb = q + b * S * qld + h0 * hd;
      const T* kb = k + b * S * kld + j * hd;
      T* pb = probs + (b * H + h0) * S * S;
      // scores[h] = Q_h · K_jᵀ   for the G query heads of KV head j (K shared: stride 0)
      gemm_strided<T, T>(blas, {false, true, S, S, hd, qld, kld, S}, 1.0f, qb, hd, kb, 0, 0.0f, pb, S * S, G);
    }
  causal_softmax_forward(probs, s.batch * H, S, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
                         blas.stream());
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < KV; ++j) {
      const int64_t h0 = j * G;
      const T* pb = probs + (b * H + h0) * S * S;
      const T* vb = v + b * S * kld + j * hd;
      T* ob = out + b * S * qld + h0 * hd;
      gemm_strided<T, T>(blas, {false, false, S, hd, S, S, kld, qld}, 1.0f, pb, S * S, vb, 0, 0.0f, ob, hd, G);
    }
}

template <typename T>
void attention_backward(Blas& blas, T* dq, T* dk, T* dv, T* scratch, const T* dout, const T* probs, const T* q,
                        const T* k, const T* v, const AttentionDims& s) {
  check(s);
  const int64_t S = s.seq, H = s.heads, KV = s.kv_heads, hd = s.head_dim, G = H / KV;
  const int64_t qld = H * hd, kld = KV * hd;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < KV; ++j) {
      const int64_t h0 = j * G;
      const T* dob = dout + b * S * qld + h0 * hd;
      const T* vb = v + b * S * kld + j * hd;
      T* dpb = scratch + (b * H + h0) * S * S;
      // dP[h] = dO_h · V_jᵀ
      gemm_strided<T, T>(blas, {false, true, S, S, hd, qld, kld, S}, 1.0f, dob, hd, vb, 0, 0.0f, dpb, S * S, G);
      // dV_j = Σ_h P_hᵀ · dO_h (heads one by one: they share dV_j)
      for (int64_t g = 0; g < G; ++g)
        gemm<T, T>(blas, {true, false, S, hd, S, S, qld, kld}, 1.0f, probs + (b * H + h0 + g) * S * S, dob + g * hd,
                   g == 0 ? 0.0f : 1.0f, dv + b * S * kld + j * hd);
    }
  causal_softmax_backward(scratch, scratch, probs, s.batch * H, S, scale, blas.stream());
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < KV; ++j) {
      const int64_t h0 = j * G;
      const T* dsb = scratch + (b * H + h0) * S * S;
      const T* kb = k + b * S * kld + j * hd;
      const T* qb = q + b * S * qld + h0 * hd;
      // dQ_h = dS_h · K_j
      gemm_strided<T, T>(blas, {false, false, S, hd, S, S, kld, qld}, 1.0f, dsb, S * S, kb, 0, 0.0f,
                         dq + b * S * qld + h0 * hd, hd, G);
      // dK_j = Σ_h dS_hᵀ · Q_h
      for (int64_t g = 0; g < G; ++g)
        gemm<T, T>(blas, {true, false, S, hd, S, S, qld, kld}, 1.0f, dsb + g * S * S, qb + g * hd,
                   g == 0 ? 0.0f : 1.0f, dk + b * S * kld + j * hd);
    }
}

template void attention_forward<float>(Blas&, float*, float*, const float*, const float*, const float*,
                                       const AttentionDims&);
template void attention_forward<bf16>(Blas&, bf16*, bf16*, const bf16*, const bf16*, const bf16*,
                                      const AttentionDims&);
template void attention_backward<float>(Blas&, float*, float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, const AttentionDims&);
template void attention_backward<bf16>(Blas&, bf16*, bf16*, bf16*, bf16*, const bf16*, const bf16*, const bf16*,
                                       const bf16*, const bf16*, const AttentionDims&);

}  // namespace moe::rt::cuda
