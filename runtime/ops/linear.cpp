// Linear layer without bias (see linear.h): three GEMMs on the caller's buffers.
#include "linear.h"

#include <type_traits>
#include <vector>

#include "gemm.h"

namespace moe::rt {

// y[rows×out] = x[rows×in] · W[out×in]ᵀ
template <typename T>
void linear_forward(T* y, const T* x, const T* w, int64_t rows, int64_t in, int64_t out) {
  gemm(false, true, rows, out, in, T(1), x, in, w, in, T(0), y, out);
}

// dx[rows×in] (+)= dy[rows×out] · W[out×in];  dW[out×in] += dyᵀ · x
template <typename T>
void linear_backward(T* dx, std::type_identity_t<GradSink<T>> dw, const T* dy, const T* x, const T* w, int64_t rows, int64_t in,
                     int64_t out, bool accumulate_dx) {
  if (dx) gemm(false, false, rows, in, out, T(1), dy, out, w, in, accumulate_dx ? T(1) : T(0), dx, in);
  if (dw.empty() || rows == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (dw.exact) {  // one partial per segment, each added exactly
      thread_local std::vector<float> partial;
      partial.resize(static_cast<size_t>(out * in));
      for (int64_t s = 0; s < dw.segments(rows); ++s) {
        const int64_t r0 = dw.begin(s), n = dw.end(s, rows) - r0;
        gemm(true, false, out, in, n, 1.0f, dy + r0 * out, out, x + r0 * in, in, 0.0f, partial.data(), in);
        dw.exact->add(partial.data(), partial.size());
      }
      return;
    }
  }
  gemm(true, false, out, in, rows, T(1), dy, out, x, in, T(1), dw.grad, in);
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void linear_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t);
template void linear_backward<float>(float*, GradSink<float>, const float*, const float*, const float*, int64_t,
                                     int64_t, int64_t, bool);
template void linear_backward<double>(double*, GradSink<double>, const double*, const double*, const double*,
                                      int64_t, int64_t, int64_t, bool);

}  // namespace moe::rt
