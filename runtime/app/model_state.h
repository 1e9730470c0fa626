#pragma once
// The bridge between a training run's in-memory state (model weights, AdamW moments, balancing
// biases, RNG, data position) and a checkpoint directory (runtime/io/checkpoint.h).
#include <cstdint>
#include <filesystem>
#include <random>

#include "checkpoint.h"
#include "model.h"
#include "optimizer.h"

namespace moe::rt {

struct RunState {  // what is not a tensor
  int64_t step = 0;           // optimizer steps done
  int64_t data_position = 0;  // sequences drawn by the training sampler
  std::mt19937_64 rng;        // jitter noise
};

// `extra` (expert parallelism): tensors of experts held by other ranks, written beside the model's.
std::filesystem::path save_training_checkpoint(const std::filesystem::path& root, MixtralModel& model,
                                               AdamW* optimizer, const RunState& state,
                                               const CheckpointData* extra = nullptr);

// Loads the weights (and balancing biases) into `model`; a tensor missing, extra or of another
// shape is a one-line error naming the file and the tensor.
void load_model_weights(const LoadedCheckpoint& ck, MixtralModel& model);
// Loads the AdamW moments and the run state for --resume.
RunState load_run_state(const LoadedCheckpoint& ck, AdamW& optimizer);

}  // namespace moe::rt
