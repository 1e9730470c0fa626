// Kernels of the CUDA MoE layer's padded row layout (see layer_kernels.h).
#include "kernel_util.cuh"
#include "layer_kernels.h"

namespace moe::rt::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void gather_masked_kernel(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) {
    const int32_t r = index[i / d];
    dst[i] = r >= 0 ? src[static_cast<int64_t>(r) * d + i % d] : from_f<T>(0.0f);
  }
}

template <typename T>
__global__ void scatter_add_masked_kernel(T* dst, const T* src, const int32_t* index, const int32_t* assignment,
                                          const float* weight, int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) {
    const int64_t r = i / d;
    const int32_t t = index[r];
    if (t < 0) continue;
    const float w = weight ? weight[assignment[r]] : 1.0f;
    atomicAdd(&dst[static_cast<int64_t>(t) * d + i % d], from_f<T>(w * to_f(src[i])));
  }
}

template <typename T>
__global__ void combine_bwd_rows_kernel(T* out, const T* dy, const int32_t* index, const int32_t* assignment,
                                        const float* weight, int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) {
    const int64_t r = i / d;
    const int32_t t = index[r];
    out[i] = t >= 0 ? from_f<T>(weight[assignment[r]] * to_f(dy[static_cast<int64_t>(t) * d + i % d]))
                    : from_f<T>(0.0f);
  }
}

// One warp per assignment.
template <typename T>
__global__ void assignment_dots_kernel(float* out, const T* rows_in, const T* dy, const int32_t* row,
                                       const int32_t* token, int64_t A, int64_t d) {
  const int64_t a = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (a >= A) return;
  const int32_t r = row[a];
  if (r < 0) {
    if (lane == 0) out[a] = 0.0f;
    return;
  }
  const T* x = rows_in + static_cast<int64_t>(r) * d;
  const T* y = dy + static_cast<int64_t>(token[a]) * d;
  float acc = 0.0f;
  for (int64_t i = lane; i < d; i += 32) acc += to_f(x[i]) * to_f(y[i]);
  acc = warp_sum(acc);
  if (lane == 0) out[a] = acc;
}

template <typename T>
__global__ void mul_add_kernel(T* dst, const T* a, const float* u, int64_t n) {
  MOE_GRID_LOOP(i, n) dst[i] = from_f<T>(to_f(dst[i]) + to_f(a[i]) * u[i]);
}

template <typename T>
__global__ void add_kernel(T* dst, const T* a, const T* b, int64_t n) {
  MOE_GRID_LOOP(i, n) dst[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}

__global__ void sum_squares_kernel(float* out, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += x[i] * x[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = acc;
}

__global__ void scale_kernel(float* x, float factor, int64_t n) {
  MOE_GRID_LOOP(i, n) x[i] *= factor;
}

}  // namespace

template <typename T>
void add(T* dst, const T* a, const T* b, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dst, a, b, n);
  MOE_KERNEL_CHECK();
}

void sum_squares(float* out, const float* x, int64_t n, cudaStream_t s) {
  sum_squares_kernel<<<1, 1024, 0, s>>>(out, x, n);
  MOE_KERNEL_CHECK();
}

void scale(float* x, float factor, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  scale_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, factor, n);
  MOE_KERNEL_CHECK();
}

template <typename T>
void gather_rows_masked(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  gather_masked_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dst, src, index, rows, d);
  MOE_KERNEL_CHECK();
}

template <typename T>
void scatter_add_rows_masked(T* dst, const T* src, const int32_t* index, const int32_t* assignment,
                             const float* weight, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  scatter_add_masked_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dst, src, index, assignment, weight,
                                                                              rows, d);
  MOE_KERNEL_CHECK();
}

template <typename T>
void combine_backward_rows(T* d_expert_out, const T* dy, const int32_t* index, const int32_t* assignment,
                           const float* weight, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  combine_bwd_rows_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(d_expert_out, dy, index, assignment,
                                                                            weight, rows, d);
  MOE_KERNEL_CHECK();
}

template <typename T>
void assignment_dots(float* dweight, const T* expert_out, const T* dy, const int32_t* row, const int32_t* token,
                     int64_t assignments, int64_t d, cudaStream_t s) {
  if (assignments <= 0) return;
  assignment_dots_kernel<<<grid_for(assignments * 32, kThreads), kThreads, 0, s>>>(dweight, expert_out, dy, row,
                                                                                   token, assignments, d);
  MOE_KERNEL_CHECK();
}

template <typename T>
void mul_add(T* dst, const T* a, const float* u, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  mul_add_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dst, a, u, n);
  MOE_KERNEL_CHECK();
}

#define MOE_INSTANTIATE(T)                                                                                     \
  template void gather_rows_masked<T>(T*, const T*, const int32_t*, int64_t, int64_t, cudaStream_t);          \
  template void scatter_add_rows_masked<T>(T*, const T*, const int32_t*, const int32_t*, const float*, int64_t, \
                                           int64_t, cudaStream_t);                                             \
  template void combine_backward_rows<T>(T*, const T*, const int32_t*, const int32_t*, const float*, int64_t,   \
                                         int64_t, cudaStream_t);                                               \
  template void assignment_dots<T>(float*, const T*, const T*, const int32_t*, const int32_t*, int64_t, int64_t, \
                                   cudaStream_t);                                                              \
  template void mul_add<T>(T*, const T*, const float*, int64_t, cudaStream_t);                                \
  template void add<T>(T*, const T*, const T*, int64_t, cudaStream_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(__nv_bfloat16)

}  // namespace moe::rt::cuda
