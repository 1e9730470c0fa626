// Router kernels: scores, jitter, balancing-loss terms, the per-token backward, bias balancing
// (see kernels.h; CPU twin runtime/moe/router.cpp). One thread per token: E is small (≤ 256).
#include "jitter_hash.h"
#include "kernel_util.cuh"
#include "kernels.h"

namespace moe::rt::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void router_scores_kernel(float* scores, float* lse, const float* logits, int64_t tokens, int64_t E,
                                     bool sigmoid) {
  MOE_GRID_LOOP(t, tokens) {
    const float* l = logits + t * E;
    float m = -INFINITY;
    for (int64_t e = 0; e < E; ++e) m = fmaxf(m, l[e]);
    float sum = 0.0f;
    for (int64_t e = 0; e < E; ++e) sum += expf(l[e] - m);
    const float z = m + logf(sum);
    lse[t] = z;
    for (int64_t e = 0; e < E; ++e) scores[t * E + e] = sigmoid ? 1.0f / (1.0f + expf(-l[e])) : expf(l[e] - z);
  }
}

template <typename T>
__global__ void jitter_kernel(T* noisy, float* noise, const T* x, int64_t n, float eps, uint64_t seed) {
  MOE_GRID_LOOP(i, n) {
    const float u = jitter_noise(seed, static_cast<uint64_t>(i), eps);
    noise[i] = u;
    noisy[i] = from_f<T>(to_f(x[i]) * u);
  }
}

// One block; thread e sums column e (mean_p) and thread 0's lane sums lse² — deterministic order.
__global__ void loss_terms_kernel(float* terms, float* mean_p, const float* scores, const float* lse, int64_t tokens,
                                  int64_t E, bool sigmoid) {
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    float acc = 0.0f;
    for (int64_t t = 0; t < tokens; ++t) {
      float norm = 1.0f;
      if (sigmoid) {
        norm = 0.0f;
        for (int64_t j = 0; j < E; ++j) norm += scores[t * E + j];
      }
      acc += scores[t * E + e] / norm;
    }
    mean_p[e] = acc;
  }
  float z = 0.0f;
  for (int64_t t = threadIdx.x; t < tokens; t += blockDim.x) z += lse[t] * lse[t];
  z = block_sum(z);
  if (threadIdx.x == 0) terms[0] = z;
}

__global__ void router_bwd_kernel(float* dlogits, const float* dscores, const float* scores, const float* logits,
                                  const float* lse, const float* load_share, int64_t tokens, int64_t E, bool sigmoid,
                                  float aux_coef, float z_coef) {
  MOE_GRID_LOOP(t, tokens) {
    const float* s = scores + t * E;
    const float* ds = dscores + t * E;
    const float* l = logits + t * E;
    float* dl = dlogits + t * E;
    float sum = 0.0f, aux_dot = 0.0f;
    if (sigmoid && aux_coef != 0.0f) {
      for (int64_t e = 0; e < E; ++e) sum += s[e];
      for (int64_t e = 0; e < E; ++e) aux_dot += load_share[e] * s[e] / sum;
    }
    // ds with the aux gradient added, as the CPU twin modifies dscores in place.
    auto ds_full = [&](int64_t e) {
      if (aux_coef == 0.0f) return ds[e];
      return sigmoid ? ds[e] + aux_coef * (load_share[e] - aux_dot) / sum : ds[e] + aux_coef * load_share[e];
    };
    float dot = 0.0f;
    if (!sigmoid)
      for (int64_t e = 0; e < E; ++e) dot += s[e] * ds_full(e);
    for (int64_t e = 0; e < E; ++e) {
      float g = sigmoid ? ds_full(e) * s[e] * (1.0f - s[e]) : s[e] * (ds_full(e) - dot);
      if (z_coef != 0.0f) g += z_coef * lse[t] * expf(l[e] - lse[t]);
      dl[e] = g;
    }
  }
}

__global__ void bias_update_kernel(float* bias, const int64_t* load, int64_t E, float rate) {
  double mean = 0.0;
  for (int64_t e = 0; e < E; ++e) mean += static_cast<double>(load[e]);
  mean /= static_cast<double>(E);
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    const double diff = mean - static_cast<double>(load[e]);
    bias[e] += rate * static_cast<float>(diff > 0 ? 1 : (diff < 0 ? -1 : 0));
  }
}

}  // namespace

void router_scores(float* scores, float* lse, const float* logits, int64_t tokens, int64_t E, bool sigmoid,
                   cudaStream_t s) {
  if (tokens <= 0) return;
  router_scores_kernel<<<grid_for(tokens, kThreads), kThreads, 0, s>>>(scores, lse, logits, tokens, E, sigmoid);
  MOE_KERNEL_CHECK();
}

template <typename T>
void router_jitter(T* noisy, float* noise, const T* x, int64_t n, double eps, uint64_t seed, cudaStream_t s) {
  if (n <= 0) return;
  jitter_kernel<<<grid_for(n, 256), 256, 0, s>>>(noisy, noise, x, n, static_cast<float>(eps), seed);
  MOE_KERNEL_CHECK();
}

void router_loss_terms(float* loss_terms, float* mean_p, const float* scores, const float* lse, int64_t tokens,
                       int64_t E, bool sigmoid, cudaStream_t s) {
  loss_terms_kernel<<<1, 256, 0, s>>>(loss_terms, mean_p, scores, lse, tokens, E, sigmoid);
  MOE_KERNEL_CHECK();
}

void router_backward(float* dlogits, const float* dscores, const float* scores, const float* logits, const float* lse,
                     const float* load_share, int64_t tokens, int64_t E, bool sigmoid, float aux_coef, float z_coef,
                     cudaStream_t s) {
  if (tokens <= 0) return;
  router_bwd_kernel<<<grid_for(tokens, kThreads), kThreads, 0, s>>>(dlogits, dscores, scores, logits, lse, load_share,
                                                                    tokens, E, sigmoid, aux_coef, z_coef);
  MOE_KERNEL_CHECK();
}

void bias_balancing_update(float* bias, const int64_t* load, int64_t E, float rate, cudaStream_t s) {
  bias_update_kernel<<<1, 256, 0, s>>>(bias, load, E, rate);
  MOE_KERNEL_CHECK();
}

template void router_jitter<float>(float*, float*, const float*, int64_t, double, uint64_t, cudaStream_t);
template void router_jitter<bf16>(bf16*, float*, const bf16*, int64_t, double, uint64_t, cudaStream_t);

}  // namespace moe::rt::cuda
