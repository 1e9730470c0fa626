#pragma once
// Linear layer without bias, as PyTorch's nn.Linear stores it: W is [out × in], row-major.
//   forward:  y[T×out] = x[T×in] · Wᵀ
//   backward: dx[T×in] = dy · W        (overwritten, or added to when accumulate_dx)
//             dW[out×in] += dyᵀ · x    (always accumulated: grads sum over micro-batches)
// Both go straight to gemm() on the caller's buffers: no copies, no transposes. A dW sink with an
// ExactSum (deterministic arithmetic) gets one partial dyᵀ·x per segment of rows instead.
// T is float (the runtime) or double (the float64 gradient checks in the tests).
#include <cstdint>

#include <type_traits>

#include "grad_sink.h"

namespace moe::rt {

template <typename T>
void linear_forward(T* y, const T* x, const T* w, int64_t rows, int64_t in, int64_t out);

// dx may be nullptr, dw empty, to skip that gradient.
template <typename T>
void linear_backward(T* dx, std::type_identity_t<GradSink<T>> dw, const T* dy, const T* x, const T* w, int64_t rows, int64_t in,
                     int64_t out, bool accumulate_dx = false);

}  // namespace moe::rt
