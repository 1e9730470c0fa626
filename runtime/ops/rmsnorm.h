#pragma once
// RMSNorm over the last dimension (Mixtral's *_layernorm and model.norm):
//   y = x · rstd · w,  rstd = 1 / sqrt(mean(x²) + eps)        per row of d values
//   backward, with x̂ = x · rstd:
//     dx += rstd · (w·dy − x̂ · mean(x̂ · w · dy))   (accumulated: dx is the residual stream's grad)
//     dw += Σ_rows dy · x̂   (an ExactSum sink: one partial per segment of rows, added exactly)
// forward saves rstd[rows] for backward.
#include <cstdint>

#include <type_traits>

#include "grad_sink.h"

namespace moe::rt {

template <typename T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t d, double eps);

template <typename T>
void rmsnorm_backward(T* dx, std::type_identity_t<GradSink<T>> dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t rows,
                      int64_t d);

}  // namespace moe::rt
