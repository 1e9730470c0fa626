// Causal GQA attention (see attention.h). Per head: a scores GEMM, a masked softmax over rows,
// a values GEMM. Work is split over (batch, kv group) across threads: a group's heads share dK/dV
// so they stay on one thread and no gradient is written by two threads.
// The per-head GEMMs are small (seq × seq × head_dim): while the workers run, OpenBLAS is set to
// one thread, because letting each worker's GEMM spawn OpenBLAS threads too oversubscribes the
// cores. Measured at tiny-cpu's shape (8 × 128 tokens, 4 heads of 32), forward + backward, 2 cores:
// ≈ 10 ms split this way, ≈ 18-21 ms serial over heads with 2-thread GEMMs, ≈ 50 ms split with
// 2-thread GEMMs inside. The thread count is global, so attention must not run concurrently with
// other GEMMs of the same process (the runtime calls its ops one at a time).
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "gemm.h"

namespace moe::rt {

namespace {

// Runs fn(i) for i in [0, n) on up to `threads` threads.
template <typename Fn>
void parallel_for(int64_t n, int threads, Fn fn) {
  if (threads <= 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t workers = std::min<int64_t>(threads, n);
  for (int64_t w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (int64_t i = w; i < n; i += workers) fn(i);
    });
  for (auto& t : pool) t.join();
}

int attention_threads(const AttentionShape& s) {
  // Small problems are not worth a thread start; GEMMs inside run single-threaded per worker.
  const double flops = 4.0 * s.batch * s.heads * s.seq * s.seq * s.head_dim;
  if (flops < 4e6) return 1;
  return std::max(1, gemm_threads());
}

}  // namespace

template <typename T>
void attention_forward(T* out, T* probs, const T* q, const T* k, const T* v, const AttentionShape& s) {
  const int64_t S = s.seq, hd = s.head_dim, group = s.heads / s.kv_heads;
  const int64_t q_stride = s.heads * hd, kv_stride = s.kv_heads * hd;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
  const int threads = attention_threads(s);
  const int keep = gemm_threads();
  if (threads > 1) set_gemm_threads(1);
  parallel_for(s.batch * s.kv_heads, threads, [&](int64_t job) {
    const int64_t b = job / s.kv_heads, g = job % s.kv_heads;
    const T* kg = k + b * S * kv_stride + g * hd;
    const T* vg = v + b * S * kv_stride + g * hd;
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const T* qh = q + b * S * q_stride + h * hd;
      T* p = probs + (b * s.heads + h) * S * S;
      gemm(false, true, S, S, hd, scale, qh, q_stride, kg, kv_stride, T(0), p, S);
      for (int64_t i = 0; i < S; ++i) {  // softmax over keys 0..i; later keys get probability 0
        T* row = p + i * S;
        T mx = row[0];
        for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
        T sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const T inv = T(1) / sum;
        for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
        std::fill(row + i + 1, row + S, T(0));
      }
      gemm(false, false, S, hd, S, T(1), p, S, vg, kv_stride, T(0), out + b * S * q_stride + h * hd,
           q_stride);
    }
  });
  if (threads > 1) set_gemm_threads(keep);
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* probs, const T* q, const T* k,
                        const T* v, const AttentionShape& s) {
  const int64_t S = s.seq, hd = s.head_dim, group = s.heads / s.kv_heads;
  const int64_t q_stride = s.heads * hd, kv_stride = s.kv_heads * hd;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
  const int threads = attention_threads(s);
  const int keep = gemm_threads();
  if (threads > 1) set_gemm_threads(1);
  parallel_for(s.batch * s.kv_heads, threads, [&](int64_t job) {
    const int64_t b = job / s.kv_heads, g = job % s.kv_heads;
    const T* kg = k + b * S * kv_stride + g * hd;
    const T* vg = v + b * S * kv_stride + g * hd;
    T* dkg = dk + b * S * kv_stride + g * hd;
    T* dvg = dv + b * S * kv_stride + g * hd;
    for (int64_t i = 0; i < S; ++i) {
      std::fill(dkg + i * kv_stride, dkg + i * kv_stride + hd, T(0));
      std::fill(dvg + i * kv_stride, dvg + i * kv_stride + hd, T(0));
    }
    std::vector<T> dp(S * S);
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const T* qh = q + b * S * q_stride + h * hd;
      const T* doh = dout + b * S * q_stride + h * hd;
      T* dqh = dq + b * S * q_stride + h * hd;
      const T* p = probs + (b * s.heads + h) * S * S;
      gemm(true, false, S, hd, S, T(1), p, S, doh, q_stride, T(1), dvg, kv_stride);   // dV += Pᵀ·dO
      gemm(false, true, S, S, hd, T(1), doh, q_stride, vg, kv_stride, T(0), dp.data(), S);  // dP = dO·Vᵀ
      for (int64_t i = 0; i < S; ++i) {  // softmax backward, then the score scale
        const T* prow = p + i * S;
        T* drow = dp.data() + i * S;
        T dot = 0;
        for (int64_t j = 0; j <= i; ++j) dot += prow[j] * drow[j];
        for (int64_t j = 0; j <= i; ++j) drow[j] = prow[j] * (drow[j] - dot) * scale;
        std::fill(drow + i + 1, drow + S, T(0));
      }
      gemm(false, false, S, hd, S, T(1), dp.data(), S, kg, kv_stride, T(0), dqh, q_stride);  // dQ = dS·K
      gemm(true, false, S, hd, S, T(1), dp.data(), S, qh, q_stride, T(1), dkg, kv_stride);   // dK += dSᵀ·Q
    }
  });
  if (threads > 1) set_gemm_threads(keep);
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const AttentionShape&);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*,
                                        const AttentionShape&);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, const AttentionShape&);
template void attention_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*,
                                         const AttentionShape&);

}  // namespace moe::rt
