#pragma once
// Kernels of the CUDA MoE layer's padded row layout (moe_layer_plan.h: in capacity mode an expert
// owns C rows, the unused ones are padding, marked by index −1). Each has a CPU twin in runtime/moe
// (routing_ops.h, LocalDispatcher) on the compact layout; padding rows read as zero and are never
// written back. T is float or bf16 (fp32 arithmetic inside).
#include <cuda_runtime.h>

#include <cstdint>

namespace moe::rt::cuda {

// dst[r] = index[r] >= 0 ? src[index[r]] : 0. CPU twin: gather_rows (dispatch).
template <typename T>
void gather_rows_masked(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, cudaStream_t s);

// dst[index[r]] += (weight ? weight[assignment[r]] : 1) · src[r] for index[r] >= 0 (atomic adds).
// CPU twins: scatter_add_rows (dispatch backward), weighted_scatter_add_rows (expert-choice combine).
template <typename T>
void scatter_add_rows_masked(T* dst, const T* src, const int32_t* index, const int32_t* assignment,
                             const float* weight, int64_t rows, int64_t d, cudaStream_t s);

// d_expert_out[r] = weight[assignment[r]] · dy[index[r]], 0 for padding.
// CPU twin: weighted_gather_rows in LocalDispatcher::combine_backward.
template <typename T>
void combine_backward_rows(T* d_expert_out, const T* dy, const int32_t* index, const int32_t* assignment,
                           const float* weight, int64_t rows, int64_t d, cudaStream_t s);

// dweight[a] = row[a] >= 0 ? expert_out[row[a]] · dy[token[a]] : 0 (one warp per assignment).
// CPU twin: row_dots + the scatter into dweight in LocalDispatcher::combine_backward.
template <typename T>
void assignment_dots(float* dweight, const T* expert_out, const T* dy, const int32_t* row, const int32_t* token,
                     int64_t assignments, int64_t d, cudaStream_t s);

// dst[i] += a[i] · u[i]: the jittered router's input gradient (CPU twin: Router::backward).
template <typename T>
void mul_add(T* dst, const T* a, const float* u, int64_t n, cudaStream_t s);

// dst[i] = a[i] + b[i] (the residual stream; dst may alias a or b).
template <typename T>
void add(T* dst, const T* a, const T* b, int64_t n, cudaStream_t s);

// out[0] = Σ x[i]² (one block, fixed order: deterministic). Gradient-norm clipping.
void sum_squares(float* out, const float* x, int64_t n, cudaStream_t s);

// x[i] *= factor (gradient clipping).
void scale(float* x, float factor, int64_t n, cudaStream_t s);

}  // namespace moe::rt::cuda
