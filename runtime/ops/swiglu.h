#pragma once
// SwiGLU gate, elementwise: out = silu(a) · b, silu(a) = a · sigmoid(a).
// In an FFN a = x·W1ᵀ (gate_proj / w1) and b = x·W3ᵀ (up_proj / w3); the result goes through W2.
//   backward: da = dout · b · sigmoid(a) · (1 + a · (1 − sigmoid(a))),  db = dout · silu(a)
// da and db are overwritten; each element of dout is read before da/db are written, so either
// may alias dout. n is the number of elements (rows × width). Single-threaded: callers split ranges.
#include <cstdint>

namespace moe::rt {

template <typename T>
void swiglu_forward(T* out, const T* a, const T* b, int64_t n);

template <typename T>
void swiglu_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n);

}  // namespace moe::rt
