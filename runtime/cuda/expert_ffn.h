#pragma once
// The SwiGLU expert bank on the GPU (CPU twin: SwigluExperts in runtime/moe/swiglu_experts.h):
// expert i works on rows [offsets[i], offsets[i+1]) of expert-major x; its weights are the i-th
// [f×d] / [d×f] / [f×d] blocks of three contiguous buffers. The nine GEMMs go through
// gemm_grouped (gemm_plan.h): one strided-batched call each in capacity mode (every expert has C
// rows, padded rows zero), one grouped call each in dropless mode.
// Weight gradients are fp32 and accumulated (+=), as the CPU twin's.
#include <cstdint>
#include <vector>

#include "cublas_ops.h"

namespace moe::rt::cuda {

template <typename T>
struct ExpertBank {
  const T* w1 = nullptr;  // [E×f×d]
  const T* w2 = nullptr;  // [E×d×f]
  const T* w3 = nullptr;  // [E×f×d]
  int64_t d = 0, f = 0;
};
struct ExpertBankGrads {
  float* w1 = nullptr;
  float* w2 = nullptr;
  float* w3 = nullptr;
};

// The activations of one forward, [rows×f] each, kept for backward.
template <typename T>
struct ExpertActivations {
  T* h1 = nullptr;
  T* h3 = nullptr;
  T* act = nullptr;
};

struct ExpertFfnPaths {  // the cuBLAS path each phase took (bench table, tests)
  GroupedPath forward = GroupedPath::none, backward_data = GroupedPath::none, backward_weight = GroupedPath::none;
};

// y [rows×d] = experts(x). offsets: host copy, E + 1 entries.
template <typename T>
ExpertFfnPaths expert_ffn_forward(Blas& blas, const ExpertBank<T>& w, const T* x, const std::vector<int64_t>& offsets,
                                  const ExpertActivations<T>& a, T* y, bool allow_grouped = true);

// From dy [rows×d]: dx [rows×d] (overwritten) and grads (+=). dact is scratch [rows×f]; h1 and h3
// are overwritten with their gradients (the forward activations are consumed).
template <typename T>
ExpertFfnPaths expert_ffn_backward(Blas& blas, const ExpertBank<T>& w, const ExpertBankGrads& g, const T* x,
                                   const std::vector<int64_t>& offsets, const ExpertActivations<T>& a, const T* dy,
                                   T* dact, T* dx, bool allow_grouped = true);

}  // namespace moe::rt::cuda
