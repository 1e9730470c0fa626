// Counter-based random windows over a byte array (see batch_sampler.h).
#include "batch_sampler.h"

#include "error.h"
#include "synthetic_data.h"

namespace moe::rt {

BatchSampler::BatchSampler(const Bytes& data, int64_t seq_len, uint64_t seed)
    : data_(data), seq_len_(seq_len), seed_(seed) {
  if (static_cast<int64_t>(data.size()) < seq_len + 1)
    throw Error("data: " + std::to_string(data.size()) + " bytes, shorter than one sequence (model.seq_len + 1 = " +
                std::to_string(seq_len + 1) + ")");
}

void BatchSampler::next(int64_t n, std::vector<int32_t>& tokens) {
  const int64_t window = seq_len_ + 1;
  const uint64_t starts = static_cast<uint64_t>(static_cast<int64_t>(data_.size()) - window + 1);
  tokens.resize(static_cast<size_t>(n * window));
  for (int64_t b = 0; b < n; ++b, ++position_) {
    const uint64_t h = splitmix64(splitmix64(seed_) ^ static_cast<uint64_t>(position_));
    const size_t begin = static_cast<size_t>(h % starts);
    for (int64_t t = 0; t < window; ++t) tokens[static_cast<size_t>(b * window + t)] = data_[begin + static_cast<size_t>(t)];
  }
}

}  // namespace moe::rt
