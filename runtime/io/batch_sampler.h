#pragma once
// Deterministic, resumable batch sampling: sequence number i of a run starts at an offset drawn
// from (seed, i) by a counter-based hash, so the sampler's whole state is one integer (how many
// sequences it has drawn) and a resumed run draws exactly the sequences the uninterrupted one would.
#include <cstdint>
#include <vector>

#include "byte_data.h"

namespace moe::rt {

class BatchSampler {
 public:
  BatchSampler(const Bytes& data, int64_t seq_len, uint64_t seed);

  // Fills tokens[n × (seq_len + 1)]: n windows, inputs are the first seq_len, targets the last.
  void next(int64_t n, std::vector<int32_t>& tokens);

  int64_t position() const { return position_; }
  void set_position(int64_t position) { position_ = position; }

 private:
  const Bytes& data_;
  int64_t seq_len_;
  uint64_t seed_;
  int64_t position_ = 0;
};

}  // namespace moe::rt
