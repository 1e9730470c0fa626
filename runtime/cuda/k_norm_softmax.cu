// Row kernels: RMSNorm, attention's fused causal softmax, cross-entropy, a sum (see kernels.h).
// One block per row; fp32 arithmetic whatever T is.
#include "kernel_util.cuh"
#include "kernels.h"

namespace moe::rt::cuda {

namespace {

constexpr int kRowThreads = 256;

template <typename T>
__global__ void rmsnorm_fwd_kernel(T* y, float* rstd, const T* x, const T* w, int64_t d, float eps) {
  const T* xr = x + blockIdx.x * d;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += to_f(xr[i]) * to_f(xr[i]);
  const float r = rsqrtf(block_sum(ss) / static_cast<float>(d) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) y[blockIdx.x * d + i] = from_f<T>(to_f(xr[i]) * r * to_f(w[i]));
}

template <typename T>
__global__ void rmsnorm_bwd_kernel(T* dx, float* dw, const T* dy, const T* x, const T* w, const float* rstd, int64_t d) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  const T* dyr = dy + row * d;
  const float r = rstd[row];
  float dot = 0.0f;  // Σ x̂ · w · dy
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) dot += to_f(xr[i]) * r * to_f(w[i]) * to_f(dyr[i]);
  const float mean = block_sum(dot) / static_cast<float>(d);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float xh = to_f(xr[i]) * r, g = to_f(dyr[i]);
    dx[row * d + i] = from_f<T>(to_f(dx[row * d + i]) + r * (to_f(w[i]) * g - xh * mean));
    atomicAdd(&dw[i], g * xh);
  }
}

// Row r of [groups × seq × seq] is query position r % seq: keys beyond it are masked to 0.
template <typename T>
__global__ void causal_softmax_fwd_kernel(T* p, int64_t seq, float scale) {
  T* row = p + blockIdx.x * seq;
  const int64_t valid = blockIdx.x % seq + 1;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) m = fmaxf(m, to_f(row[j]) * scale);
  m = block_max(m);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) sum += __expf(to_f(row[j]) * scale - m);
  const float inv = 1.0f / block_sum(sum);
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x)
    row[j] = from_f<T>(j < valid ? __expf(to_f(row[j]) * scale - m) * inv : 0.0f);
}

template <typename T>
__global__ void causal_softmax_bwd_kernel(T* ds, const T* dp, const T* p, int64_t seq, float scale) {
  const int64_t base = blockIdx.x * seq;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) dot += to_f(dp[base + j]) * to_f(p[base + j]);
  dot = block_sum(dot);
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x)
    ds[base + j] = from_f<T>(to_f(p[base + j]) * (to_f(dp[base + j]) - dot) * scale);
}

template <typename T>
__global__ void cross_entropy_fwd_kernel(float* probs, float* row_loss, const T* logits, const int32_t* targets,
                                         int64_t vocab) {
  const int64_t base = blockIdx.x * vocab;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, to_f(logits[base + j]));
  m = block_max(m);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) sum += expf(to_f(logits[base + j]) - m);
  sum = block_sum(sum);
  const float lse = m + logf(sum);
  const float target_logit = to_f(logits[base + targets[blockIdx.x]]);
  __syncthreads();  // probs may alias logits: every thread has read the target logit
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) probs[base + j] = expf(to_f(logits[base + j]) - lse);
  if (threadIdx.x == 0) row_loss[blockIdx.x] = lse - target_logit;
}

template <typename T>
__global__ void cross_entropy_bwd_kernel(T* dlogits, const float* probs, const int32_t* targets, int64_t vocab,
                                         float factor) {
  const int64_t base = blockIdx.x * vocab;
  const int32_t target = targets[blockIdx.x];
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    dlogits[base + j] = from_f<T>(factor * (probs[base + j] - (j == target ? 1.0f : 0.0f)));
}

__global__ void sum_kernel(float* out, const float* in, int64_t n) {
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += in[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = s;
}

}  // namespace

template <typename T>
void rmsnorm_forward(T* y, float* rstd, const T* x, const T* w, int64_t rows, int64_t d, double eps, cudaStream_t s) {
  if (rows <= 0) return;
  rmsnorm_fwd_kernel<<<rows, kRowThreads, 0, s>>>(y, rstd, x, w, d, static_cast<float>(eps));
  MOE_KERNEL_CHECK();
}
template <typename T>
void rmsnorm_backward(T* dx, float* dw, const T* dy, const T* x, const T* w, const float* rstd, int64_t rows,
                      int64_t d, cudaStream_t s) {
  if (rows <= 0) return;
  rmsnorm_bwd_kernel<<<rows, kRowThreads, 0, s>>>(dx, dw, dy, x, w, rstd, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void causal_softmax_forward(T* probs, int64_t groups, int64_t seq, float scale, cudaStream_t s) {
  if (groups * seq <= 0) return;
  causal_softmax_fwd_kernel<<<groups * seq, kRowThreads, 0, s>>>(probs, seq, scale);
  MOE_KERNEL_CHECK();
}
template <typename T>
void causal_softmax_backward(T* dscores, const T* dprobs, const T* probs, int64_t groups, int64_t seq, float scale,
                             cudaStream_t s) {
  if (groups * seq <= 0) return;
  causal_softmax_bwd_kernel<<<groups * seq, kRowThreads, 0, s>>>(dscores, dprobs, probs, seq, scale);
  MOE_KERNEL_CHECK();
}
template <typename T>
void cross_entropy_forward(float* probs, float* row_loss, const T* logits, const int32_t* targets, int64_t rows,
                           int64_t vocab, cudaStream_t s) {
  if (rows <= 0) return;
  cross_entropy_fwd_kernel<<<rows, kRowThreads, 0, s>>>(probs, row_loss, logits, targets, vocab);
  MOE_KERNEL_CHECK();
}
template <typename T>
void cross_entropy_backward(T* dlogits, const float* probs, const int32_t* targets, int64_t rows, int64_t vocab,
                            float dloss, cudaStream_t s) {
  if (rows <= 0) return;
  cross_entropy_bwd_kernel<<<rows, kRowThreads, 0, s>>>(dlogits, probs, targets, vocab,
                                                        dloss / static_cast<float>(rows));
  MOE_KERNEL_CHECK();
}
void sum_reduce(float* out, const float* in, int64_t n, cudaStream_t s) {
  sum_kernel<<<1, 1024, 0, s>>>(out, in, n);
  MOE_KERNEL_CHECK();
}

#define MOE_INSTANTIATE(T)                                                                                     \
  template void rmsnorm_forward<T>(T*, float*, const T*, const T*, int64_t, int64_t, double, cudaStream_t);    \
  template void rmsnorm_backward<T>(T*, float*, const T*, const T*, const T*, const float*, int64_t, int64_t,  \
                                    cudaStream_t);                                                             \
  template void causal_softmax_forward<T>(T*, int64_t, int64_t, float, cudaStream_t);                          \
  template void causal_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, float, cudaStream_t);     \
  template void cross_entropy_forward<T>(float*, float*, const T*, const int32_t*, int64_t, int64_t,           \
                                         cudaStream_t);                                                        \
  template void cross_entropy_backward<T>(T*, const float*, const int32_t*, int64_t, int64_t, float, cudaStream_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(bf16)

}  // namespace moe::rt::cuda
