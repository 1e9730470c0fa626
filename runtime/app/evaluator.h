#pragma once
// Mean next-byte cross-entropy of a text (docs/architecture.md 3.5): bytes are tokens (no BOS), windows
// of seq_len + 1 bytes share their boundary byte, routing is dropless and noise-free.
#include <cstdint>
#include <functional>

#include "model.h"

namespace moe::rt {

struct EvalResult {
  double mean_nats = 0.0;   // total_nats / predicted (0 when this share predicted nothing)
  int64_t predicted = 0;    // bytes predicted (text bytes − 1, or this share's part of them)
  double total_nats = 0.0;  // summed cross-entropy: what ranks add up
};

// One rank's share of an evaluation split over `slices` ranks (validation with dp·ep ranks). The
// batches are those of one process with max_batch·slices windows per batch; rank `slice` evaluates
// windows [slice·max_batch, (slice+1)·max_batch) of each (fewer or none in the last batches), like
// training's data slices. Every rank makes the same forward calls, one per batch — with zero
// sequences when its share is empty — because the MoE layers' collectives need all ranks.
struct EvalShare {
  int64_t slice = 0;
  int64_t slices = 1;
};

// How a batch goes through the model: MixtralModel::forward, or through the pipeline's stages
// (the trainer's, with parallel.pp > 1; only the last stage's lm_loss is non-zero).
using EvalForward = std::function<ForwardResult(const int32_t* tokens, const int32_t* targets, int64_t batch,
                                                const MoeLayerOptions& options, std::mt19937_64& rng, int64_t seq)>;

// `max_batch` full windows go through the model together (same result, fewer calls). With a share
// the result is this rank's part: sum total_nats and predicted over the ranks for the mean.
EvalResult evaluate_bytes(MixtralModel& model, const uint8_t* text, int64_t n, int64_t max_batch = 16,
                          EvalShare share = {}, const EvalForward& forward = {});

}  // namespace moe::rt
