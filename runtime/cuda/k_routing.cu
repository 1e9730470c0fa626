// Permutation kernels: histogram → scan → stable sort by expert, row gathers and scatter-adds, the
// weighted combine and its backward (see kernels.h; CPU twin runtime/moe/routing_ops.cpp).
#include <cub/block/block_scan.cuh>

#include "kernel_util.cuh"
#include "kernels.h"

namespace moe::rt::cuda {

namespace {

__global__ void histogram_kernel(int64_t* counts, const int32_t* expert, int64_t A, int64_t E) {
  MOE_GRID_LOOP(a, A) {
    const int32_t e = expert[a];
    if (e >= 0 && e < E) atomicAdd(reinterpret_cast<unsigned long long*>(&counts[e]), 1ull);
  }
}

__global__ void scan_kernel(int64_t* offsets, const int64_t* counts, int64_t n) {
  int64_t acc = 0;
  offsets[0] = 0;
  for (int64_t i = 0; i < n; ++i) offsets[i + 1] = (acc += counts[i]);
}

// One block per expert walks the assignments in order; a block scan numbers the expert's kept
// assignments, which is the stable counting sort of the CPU twin.
constexpr int kScanThreads = 256;
__global__ void sort_kernel(int32_t* row_assignment, int32_t* assignment_row, int32_t* row_token, const int32_t* route,
                            const int32_t* token, int64_t A, const int64_t* offsets) {
  using Scan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  const int e = blockIdx.x;
  int64_t base = offsets[e];
  for (int64_t start = 0; start < A; start += kScanThreads) {
    const int64_t a = start + threadIdx.x;
    const int32_t r = a < A ? route[a] : -2;
    const int mine = r == e;
    int prefix = 0, total = 0;
    Scan(temp).ExclusiveSum(mine, prefix, total);
    __syncthreads();
    if (mine) {
      const int64_t row = base + prefix;
      row_assignment[row] = static_cast<int32_t>(a);
      row_token[row] = token[a];
      assignment_row[a] = static_cast<int32_t>(row);
    } else if (r < 0 && r != -2 && e == 0) {
      assignment_row[a] = -1;  // dropped: block 0 marks it
    }
    base += total;
  }
}

template <typename T>
__global__ void gather_kernel(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) dst[i] = src[static_cast<int64_t>(index[i / d]) * d + i % d];
}

template <typename T>
__global__ void weighted_scatter_add_kernel(T* dst, const T* src, const int32_t* index, const float* weight,
                                            int64_t rows, int64_t d) {
  MOE_GRID_LOOP(i, rows * d) {
    const int64_t r = i / d;
    const float w = weight ? weight[r] : 1.0f;
    atomicAdd(&dst[static_cast<int64_t>(index[r]) * d + i % d], from_f<T>(w * to_f(src[i])));
  }
}

template <typename T>
__global__ void weighted_gather_kernel(T* dst, const T* src, const int32_t* index, const float* weight, int64_t rows,
                                       int64_t d) {
  MOE_GRID_LOOP(i, rows * d) {
    const int64_t r = i / d;
    dst[i] = from_f<T>(weight[r] * to_f(src[static_cast<int64_t>(index[r]) * d + i % d]));
  }
}

// One warp per row.
template <typename T>
__global__ void row_dots_kernel(float* out, const T* a, const T* b, const int32_t* index, int64_t rows, int64_t d) {
  const int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const T* ar = a + r * d;
  const T* br = b + static_cast<int64_t>(index[r]) * d;
  float acc = 0.0f;
  for (int64_t i = lane; i < d; i += 32) acc += to_f(ar[i]) * to_f(br[i]);
  acc = warp_sum(acc);
  if (lane == 0) out[r] = acc;
}

template <typename T>
__global__ void combine_token_major_kernel(T* y, const T* src, const int32_t* assignment_row, const float* weight,
                                           int64_t tokens, int64_t k, int64_t d) {
  MOE_GRID_LOOP(i, tokens * d) {
    const int64_t t = i / d, c = i % d;
    float acc = to_f(y[i]);
    for (int64_t j = 0; j < k; ++j) {
      const int32_t row = assignment_row[t * k + j];
      if (row >= 0) acc += weight[t * k + j] * to_f(src[static_cast<int64_t>(row) * d + c]);
    }
    y[i] = from_f<T>(acc);
  }
}

constexpr int kThreads = 256;

}  // namespace

void expert_histogram(int64_t* counts, const int32_t* expert, int64_t assignments, int64_t E, cudaStream_t s) {
  MOE_CUDA_CHECK(cudaMemsetAsync(counts, 0, static_cast<size_t>(E) * sizeof(int64_t), s));
  if (assignments <= 0) return;
  histogram_kernel<<<grid_for(assignments, kThreads), kThreads, 0, s>>>(counts, expert, assignments, E);
  MOE_KERNEL_CHECK();
}

void exclusive_scan(int64_t* offsets, const int64_t* counts, int64_t n, cudaStream_t s) {
  scan_kernel<<<1, 1, 0, s>>>(offsets, counts, n);
  MOE_KERNEL_CHECK();
}

void sort_by_expert(int32_t* row_assignment, int32_t* assignment_row, int32_t* row_token, const int32_t* route,
                    const int32_t* token, int64_t assignments, const int64_t* offsets, int64_t E, cudaStream_t s) {
  if (E <= 0 || assignments <= 0) return;
  sort_kernel<<<E, kScanThreads, 0, s>>>(row_assignment, assignment_row, row_token, route, token, assignments, offsets);
  MOE_KERNEL_CHECK();
}

template <typename T>
void gather_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  gather_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dst, src, index, rows, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void scatter_add_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  weighted_scatter_add_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dst, src, index, nullptr, rows, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void weighted_scatter_add_rows(T* dst, const T* src, const int32_t* index, const float* weight, int64_t rows,
                               int64_t d, cudaStream_t s) {
  if (rows * d <= 0) return;
  weighted_scatter_add_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dst, src, index, weight, rows, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void weighted_gather_rows(T* dst, const T* src, const int32_t* index, const float* weight, int64_t rows, int64_t d,
                          cudaStream_t s) {
  if (rows * d <= 0) return;
  weighted_gather_kernel<<<grid_for(rows * d, kThreads), kThreads, 0, s>>>(dst, src, index, weight, rows, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void row_dots(float* out, const T* a, const T* b, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s) {
  if (rows <= 0) return;
  row_dots_kernel<<<grid_for(rows * 32, kThreads), kThreads, 0, s>>>(out, a, b, index, rows, d);
  MOE_KERNEL_CHECK();
}
template <typename T>
void combine_token_major(T* y, const T* src, const int32_t* assignment_row, const float* weight, int64_t tokens,
                         int64_t top_k, int64_t d, cudaStream_t s) {
  if (tokens * d <= 0) return;
  combine_token_major_kernel<<<grid_for(tokens * d, kThreads), kThreads, 0, s>>>(y, src, assignment_row, weight,
                                                                                 tokens, top_k, d);
  MOE_KERNEL_CHECK();
}

#define MOE_INSTANTIATE(T)                                                                                      \
  template void gather_rows<T>(T*, const T*, const int32_t*, int64_t, int64_t, cudaStream_t);                   \
  template void scatter_add_rows<T>(T*, const T*, const int32_t*, int64_t, int64_t, cudaStream_t);              \
  template void weighted_scatter_add_rows<T>(T*, const T*, const int32_t*, const float*, int64_t, int64_t,      \
                                             cudaStream_t);                                                     \
  template void weighted_gather_rows<T>(T*, const T*, const int32_t*, const float*, int64_t, int64_t,           \
                                        cudaStream_t);                                                          \
  template void row_dots<T>(float*, const T*, const T*, const int32_t*, int64_t, int64_t, cudaStream_t);        \
  template void combine_token_major<T>(T*, const T*, const int32_t*, const float*, int64_t, int64_t, int64_t,   \
                                       cudaStream_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(bf16)

}  // namespace moe::rt::cuda
