// SwiGLU gate (see swiglu.h): elementwise, written as plain loops the compiler vectorises.
// In float the exponential is exp_det below: exact IEEE operations only, so the vectorised body
// and a scalar remainder give the same bits, and an element's result never depends on where it
// sits in the call (glibc's vector expf, which -ffast-math used to pick, differs from its scalar
// expf in about half of all inputs). Built with -fno-trapping-math so GCC vectorises the clamps.
#include "swiglu.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace moe::rt {

namespace {

// e^x in float, ≤ 3 ulp: x = n·ln2 + r (Cody-Waite, |r| ≤ ln2/2), e^r by a degree-6 polynomial,
// 2^n through the exponent bits. Clamped to [−87, 88] (e^x stays a normal float).
inline float exp_det(float x) {
  x = std::max(x, -87.0f);
  x = std::min(x, 88.0f);
  const float shifter = 12582912.0f;  // 1.5·2^23: adding it rounds to the nearest integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

inline float exp_of(float x) { return exp_det(x); }
inline double exp_of(double x) { return std::exp(x); }

}  // namespace

// The loops, once per element type; the float versions are also built for AVX2 and AVX-512
// (picked at load time). Each lane runs the same IEEE operations as the scalar code (no
// contraction, exp_det is plain arithmetic), so every version gives the same bits.
#if defined(__x86_64__) && defined(__GNUC__)
#define MOE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MOE_CLONES
#endif

namespace {

// out = silu(a) · b
template <typename T>
inline void forward_loop(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + exp_of(-a[i]));
    out[i] = a[i] * s * b[i];
  }
}

// d silu(a)/da = s + a·s·(1−s) = s·(1 + a·(1−s)), s = sigmoid(a)
template <typename T>
inline void backward_loop(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + exp_of(-a[i]));
    const T g = dout[i];
    db[i] = g * a[i] * s;
    da[i] = g * b[i] * s * (T(1) + a[i] * (T(1) - s));
  }
}

MOE_CLONES void forward_f32(float* out, const float* a, const float* b, int64_t n) { forward_loop(out, a, b, n); }
MOE_CLONES void backward_f32(float* da, float* db, const float* dout, const float* a, const float* b, int64_t n) {
  backward_loop(da, db, dout, a, b, n);
}

}  // namespace

template <typename T>
void swiglu_forward(T* out, const T* a, const T* b, int64_t n) {
  if constexpr (std::is_same_v<T, float>)
    forward_f32(out, a, b, n);
  else
    forward_loop(out, a, b, n);
}

template <typename T>
void swiglu_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  if constexpr (std::is_same_v<T, float>)
    backward_f32(da, db, dout, a, b, n);
  else
    backward_loop(da, db, dout, a, b, n);
}

template void swiglu_forward<float>(float*, const float*, const float*, int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*, int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*,
                                      int64_t);

}  // namespace moe::rt
