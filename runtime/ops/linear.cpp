// Linear layer without bias (see linear.h): three GEMMs on the caller's buffers.
#include "linear.h"

#include "gemm.h"

namespace moe::rt {

// y[rows×out] = x[rows×in] · W[out×in]ᵀ
template <typename T>
void linear_forward(T* y, const T* x, const T* w, int64_t rows, int64_t in, int64_t out) {
  gemm(false, true, rows, out, in, T(1), x, in, w, in, T(0), y, out);
}

// dx[rows×in] (+)= dy[rows×out] · W[out×in];  dW[out×in] += dyᵀ · x
template <typename T>
void linear_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, int64_t rows, int64_t in,
                     int64_t out, bool accumulate_dx) {
  if (dx) gemm(false, false, rows, in, out, T(1), dy, out, w, in, accumulate_dx ? T(1) : T(0), dx, in);
  if (dw && rows > 0) gemm(true, false, out, in, rows, T(1), dy, out, x, in, T(1), dw, in);
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void linear_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t);
template void linear_backward<float>(float*, float*, const float*, const float*, const float*, int64_t,
                                     int64_t, int64_t, bool);
template void linear_backward<double>(double*, double*, const double*, const double*, const double*,
                                      int64_t, int64_t, int64_t, bool);

}  // namespace moe::rt
