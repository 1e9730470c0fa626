// Elementwise and row-gather kernels: conversions, fill, embedding, RoPE, SwiGLU (see kernels.h).
#include "kernel_util.cuh"
#include "kernels.h"

namespace moe::rt::cuda {

namespace {

template <typename Dst, typename Src>
__global__ void convert_kernel(Dst* dst, const Src* src, int64_t n) {
  MOE_GRID_LOOP(i, n) dst[i] = from_f<Dst>(to_f(src[i]));
}
template <typename T>
__global__ void fill_kernel(T* dst, float value, int64_t n) {
  MOE_GRID_LOOP(i, n) dst[i] = from_f<T>(value);
}

template <typename T>
__global__ void embedding_fwd_kernel(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) out[i] = table[static_cast<int64_t>(tokens[i / d]) * d + i % d];
}
template <typename T>
__global__ void embedding_bwd_kernel(float* dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) atomicAdd(&dtable[static_cast<int64_t>(tokens[i / d]) * d + i % d], to_f(dout[i]));
}

// One thread per (row, i < half): rotate the pair (i, i + half) by ±angle. Angles in double as the
// CPU twin computes them (positions up to 1e5 lose digits in float).
template <typename T>
__global__ void rope_kernel(T* x, int64_t seq, int64_t heads, int64_t head_dim, double theta, double sign,
                            int64_t n_pairs) {
  const int64_t half = head_dim / 2;
  MOE_GRID_LOOP(p, n_pairs) {
    const int64_t i = p % half, vec = p / half;  // vec = (b·seq + pos)·heads + h
    const int64_t pos = (vec / heads) % seq;
    const double inv_freq = pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    double sn, cs;
    sincos(static_cast<double>(pos) * inv_freq, &sn, &cs);
    sn *= sign;
    T* v = x + vec * head_dim;
    const float a = to_f(v[i]), b = to_f(v[i + half]);
    v[i] = from_f<T>(static_cast<float>(a * cs - b * sn));
    v[i + half] = from_f<T>(static_cast<float>(b * cs + a * sn));
  }
}

template <typename T>
__global__ void swiglu_fwd_kernel(T* out, const T* a, const T* b, int64_t n) {
  MOE_GRID_LOOP(i, n) {
    const float x = to_f(a[i]);
    out[i] = from_f<T>(x / (1.0f + __expf(-x)) * to_f(b[i]));
  }
}
template <typename T>
__global__ void swiglu_bwd_kernel(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  MOE_GRID_LOOP(i, n) {
    const float x = to_f(a[i]), y = to_f(b[i]), g = to_f(dout[i]);
    const float sig = 1.0f / (1.0f + __expf(-x));
    da[i] = from_f<T>(g * y * sig * (1.0f + x * (1.0f - sig)));
    db[i] = from_f<T>(g * x * sig);
  }
}

constexpr int kThreads = 256;

}  // namespace

template <typename Dst, typename Src>
void convert(Dst* dst, const Src* src, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  convert_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dst, src, n);
  MOE_KERNEL_CHECK();
}
template <typename T>
void fill(T* dst, float value, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  fill_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dst, value, n);
  MOE_KERNEL_CHECK();
}

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  embedding_fwd_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(out, tokens, table, rows, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void embedding_backward(float* dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  embedding_bwd_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dtable, dout, tokens, rows, d);
  MOE_KERNEL_CHECK();
}

template <typename T>
void rope_forward(T* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta, cudaStream_t s) {
  const int64_t n = batch * seq * heads * (head_dim / 2);
  if (n <= 0) return;
  rope_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, seq, heads, head_dim, theta, 1.0, n);
  MOE_KERNEL_CHECK();
}
template <typename T>
void rope_backward(T* dx, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta, cudaStream_t s) {
  const int64_t n = batch * seq * heads * (head_dim / 2);
  if (n <= 0) return;
  rope_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dx, seq, heads, head_dim, theta, -1.0, n);
  MOE_KERNEL_CHECK();
}

template <typename T>
void swiglu_forward(T* out, const T* a, const T* b, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  swiglu_fwd_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(out, a, b, n);
  MOE_KERNEL_CHECK();
}
template <typename T>
void swiglu_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  swiglu_bwd_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(da, db, dout, a, b, n);
  MOE_KERNEL_CHECK();
}

#define MOE_INSTANTIATE(T)                                                                              \
  template void fill<T>(T*, float, int64_t, cudaStream_t);                                              \
  template void embedding_forward<T>(T*, const int32_t*, const T*, int64_t, int64_t, cudaStream_t);     \
  template void embedding_backward<T>(float*, const T*, const int32_t*, int64_t, int64_t, cudaStream_t); \
  template void rope_forward<T>(T*, int64_t, int64_t, int64_t, int64_t, double, cudaStream_t);          \
  template void rope_backward<T>(T*, int64_t, int64_t, int64_t, int64_t, double, cudaStream_t);         \
  template void swiglu_forward<T>(T*, const T*, const T*, int64_t, cudaStream_t);                       \
  template void swiglu_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, cudaStream_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(bf16)
template void convert<float, bf16>(float*, const bf16*, int64_t, cudaStream_t);
template void convert<bf16, float>(bf16*, const float*, int64_t, cudaStream_t);
template void convert<float, float>(float*, const float*, int64_t, cudaStream_t);
template void fill<int32_t>(int32_t*, float, int64_t, cudaStream_t);

}  // namespace moe::rt::cuda
