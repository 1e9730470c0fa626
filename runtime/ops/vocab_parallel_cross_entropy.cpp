// Vocab-parallel cross-entropy (see vocab_parallel_cross_entropy.h), in double per row.
#include "vocab_parallel_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moe::rt {

template <typename T>
void shard_statistics(const T* logits, const int32_t* targets, int64_t rows, int64_t n, int64_t first,
                      double* out_lse, double* out_target) {
  for (int64_t t = 0; t < rows; ++t) {
    const T* lr = logits + t * n;
    const double mx = n > 0 ? static_cast<double>(*std::max_element(lr, lr + n)) : 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(lr[i]) - mx);
    out_lse[t] = n > 0 ? mx + std::log(sum) : -std::numeric_limits<double>::infinity();
    const int64_t col = static_cast<int64_t>(targets[t]) - first;
    out_target[t] = col >= 0 && col < n ? static_cast<double>(lr[col]) : 0.0;
  }
}

void combine_shard_lse(const double* shard_lse, int64_t shards, int64_t rows, double* lse) {
  for (int64_t t = 0; t < rows; ++t) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t s = 0; s < shards; ++s) mx = std::max(mx, shard_lse[s * rows + t]);
    double sum = 0.0;
    for (int64_t s = 0; s < shards; ++s) sum += std::exp(shard_lse[s * rows + t] - mx);
    lse[t] = mx + std::log(sum);
  }
}

template <typename T>
double shard_softmax(T* probs, const T* logits, const double* lse, const double* target_logit, int64_t rows, int64_t n) {
  double total = 0.0;
  for (int64_t t = 0; t < rows; ++t) {
    total += lse[t] - target_logit[t];
    for (int64_t i = 0; i < n; ++i) probs[t * n + i] = static_cast<T>(std::exp(static_cast<double>(logits[t * n + i]) - lse[t]));
  }
  return rows > 0 ? total / static_cast<double>(rows) : 0.0;
}

std::vector<int32_t> shard_targets(const int32_t* targets, int64_t rows, int64_t n, int64_t first) {
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (int64_t t = 0; t < rows; ++t) {
    const int64_t col = static_cast<int64_t>(targets[t]) - first;
    out[static_cast<size_t>(t)] = col >= 0 && col < n ? static_cast<int32_t>(col) : -1;
  }
  return out;
}

template void shard_statistics<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, double*, double*);
template void shard_statistics<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double*, double*);
template double shard_softmax<float>(float*, const float*, const double*, const double*, int64_t, int64_t);
template double shard_softmax<double>(double*, const double*, const double*, const double*, int64_t, int64_t);

}  // namespace moe::rt
