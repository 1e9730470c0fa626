// SwiGLU gate (see swiglu.h): elementwise, written as plain loops the compiler vectorises
// (compiled with -ffast-math so std::exp becomes glibc's vector exp: see CMakeLists.txt).
#include "swiglu.h"

#include <cmath>

namespace moe::rt {

// out = silu(a) · b
template <typename T>
void swiglu_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + std::exp(-a[i]));
    out[i] = a[i] * s * b[i];
  }
}

// d silu(a)/da = s + a·s·(1−s) = s·(1 + a·(1−s)), s = sigmoid(a)
template <typename T>
void swiglu_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + std::exp(-a[i]));
    const T g = dout[i];
    db[i] = g * a[i] * s;
    da[i] = g * b[i] * s * (T(1) + a[i] * (T(1) - s));
  }
}

template void swiglu_forward<float>(float*, const float*, const float*, int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*, int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*,
                                      int64_t);

}  // namespace moe::rt
