// Token embedding (see embedding.h): a row gather forward, a row scatter-add backward.
#include "embedding.h"

#include <algorithm>
#include <type_traits>

namespace moe::rt {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d, VocabRange range) {
  for (int64_t t = 0; t < rows; ++t) {
    if (!range.holds(tokens[t])) {
      std::fill(out + t * d, out + (t + 1) * d, T(0));
      continue;
    }
    const T* row = table + (static_cast<int64_t>(tokens[t]) - range.first) * d;
    std::copy(row, row + d, out + t * d);
  }
}

template <typename T>
void embedding_backward(std::type_identity_t<GradSink<T>> sink, const T* dout, const int32_t* tokens, int64_t rows, int64_t d,
                        VocabRange range) {
  if constexpr (std::is_same_v<T, float>) {
    if (sink.exact) {
      for (int64_t t = 0; t < rows; ++t)
        if (range.holds(tokens[t]))
          sink.exact->add(dout + t * d, static_cast<size_t>(d),
                          static_cast<size_t>(tokens[t] - range.first) * static_cast<size_t>(d));
      return;
    }
  }
  for (int64_t t = 0; t < rows; ++t) {
    if (!range.holds(tokens[t])) continue;
    T* row = sink.grad + (static_cast<int64_t>(tokens[t]) - range.first) * d;
    const T* g = dout + t * d;
    for (int64_t i = 0; i < d; ++i) row[i] += g[i];
  }
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t, VocabRange);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t, VocabRange);
template void embedding_backward<float>(GradSink<float>, const float*, const int32_t*, int64_t, int64_t, VocabRange);
template void embedding_backward<double>(GradSink<double>, const double*, const int32_t*, int64_t, int64_t, VocabRange);

}  // namespace moe::rt
