// Token embedding (see embedding.h): a row gather forward, a row scatter-add backward.
#include "embedding.h"

#include <algorithm>

namespace moe::rt {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d) {
  for (int64_t t = 0; t < rows; ++t) {
    const T* row = table + static_cast<int64_t>(tokens[t]) * d;
    std::copy(row, row + d, out + t * d);
  }
}

template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d) {
  for (int64_t t = 0; t < rows; ++t) {
    T* row = dtable + static_cast<int64_t>(tokens[t]) * d;
    const T* g = dout + t * d;
    for (int64_t i = 0; i < d; ++i) row[i] += g[i];
  }
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t);

}  // namespace moe::rt
