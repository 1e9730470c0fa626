// Softmax cross-entropy (see cross_entropy.h). The log-probability of the target is computed as
// (logit − max) − log Σ exp(logit − max) before the softmax is written, so it is exact even when
// the target's probability underflows.
#include "cross_entropy.h"

#include <algorithm>
#include <cmath>

namespace moe::rt {

template <typename T>
double cross_entropy_forward(T* probs, const T* logits, const int32_t* targets, int64_t rows,
                             int64_t vocab) {
  double total = 0.0;
  for (int64_t t = 0; t < rows; ++t) {
    const T* lr = logits + t * vocab;
    T* pr = probs + t * vocab;
    const T mx = *std::max_element(lr, lr + vocab);
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(lr[i] - mx));
    total -= static_cast<double>(lr[targets[t]] - mx) - std::log(sum);
    const double inv = 1.0 / sum;
    for (int64_t i = 0; i < vocab; ++i) pr[i] = static_cast<T>(std::exp(static_cast<double>(lr[i] - mx)) * inv);
  }
  return rows > 0 ? total / static_cast<double>(rows) : 0.0;
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* probs, const int32_t* targets, int64_t rows,
                            int64_t vocab, double dloss, int64_t mean_rows) {
  const T scale = static_cast<T>(dloss / static_cast<double>(mean_rows > 0 ? mean_rows : rows));
  for (int64_t t = 0; t < rows; ++t) {
    const T* pr = probs + t * vocab;
    T* dr = dlogits + t * vocab;
    for (int64_t i = 0; i < vocab; ++i) dr[i] = pr[i] * scale;
    if (targets[t] >= 0 && targets[t] < vocab) dr[targets[t]] -= scale;  // (a vocab shard's: maybe another's)
  }
}

template double cross_entropy_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template double cross_entropy_forward<double>(double*, const double*, const int32_t*, int64_t, int64_t);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                            double, int64_t);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t,
                                             double, int64_t);

}  // namespace moe::rt
