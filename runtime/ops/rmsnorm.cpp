// RMSNorm (see rmsnorm.h). Row sums are kept in double so float rows of any width stay accurate.
#include "rmsnorm.h"

#include <cmath>
#include <type_traits>
#include <vector>

namespace moe::rt {

template <typename T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t d, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const T s = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    rstd[r] = s;
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * s * w[i];
  }
}

template <typename T>
void rmsnorm_backward(T* dx, std::type_identity_t<GradSink<T>> sink, const T* dy, const T* x, const T* w, const T* rstd, int64_t rows,
                      int64_t d) {
  // The exact path sums each segment's rows into a zeroed partial, then adds it to the ExactSum.
  const bool exact = sink.exact != nullptr;
  std::vector<T> partial(exact ? static_cast<size_t>(d) : 0, T(0));
  T* dw = exact ? partial.data() : sink.grad;
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    const T* gr = dy + r * d;
    T* dxr = dx + r * d;
    const T s = rstd[r];
    double dot = 0.0;  // Σ x̂ · w · dy
    for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(xr[i] * s) * w[i] * gr[i];
    const T mean_dot = static_cast<T>(dot / static_cast<double>(d));
    for (int64_t i = 0; i < d; ++i) {
      const T xhat = xr[i] * s;
      dxr[i] += s * (w[i] * gr[i] - xhat * mean_dot);
      dw[i] += gr[i] * xhat;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (exact && (r + 1 == rows || (sink.segment_rows > 0 && (r + 1) % sink.segment_rows == 0))) {
        sink.exact->add(partial.data(), partial.size());
        std::fill(partial.begin(), partial.end(), 0.0f);
      }
    }
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t, double);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int64_t, int64_t,
                                      double);
template void rmsnorm_backward<float>(float*, GradSink<float>, const float*, const float*, const float*,
                                      const float*, int64_t, int64_t);
template void rmsnorm_backward<double>(double*, GradSink<double>, const double*, const double*, const double*,
                                       const double*, int64_t, int64_t);

}  // namespace moe::rt
