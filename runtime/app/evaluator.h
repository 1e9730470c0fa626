#pragma once
// Mean next-byte cross-entropy of a text (ARCHITECTURE.md 3.5): bytes are tokens (no BOS), windows
// of seq_len + 1 bytes share their boundary byte, routing is dropless and noise-free.
#include <cstdint>

#include "model.h"

namespace moe::rt {

struct EvalResult {
  double mean_nats = 0.0;
  int64_t predicted = 0;  // bytes predicted (text bytes − 1)
};

// `max_batch` full windows go through the model together (same result, fewer calls).
EvalResult evaluate_bytes(MixtralModel& model, const uint8_t* text, int64_t n, int64_t max_batch = 16);

}  // namespace moe::rt
