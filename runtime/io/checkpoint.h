#pragma once
// Checkpoint directories (docs/architecture.md 3.5). Under a root (--checkpoint-dir) each checkpoint is
//   ROOT/step-00000100/ model.safetensors      weights under Hugging Face Mixtral names
//                       config.json            Hugging Face MixtralForCausalLM config
//                       optimizer.safetensors  AdamW moments: "exp_avg.<name>", "exp_avg_sq.<name>"
//                       trainer_state.json     step, RNG, data position, balancing biases, spec
//   ROOT/latest                                 the name of the newest complete checkpoint
// A checkpoint is written into a temporary directory, fsynced and renamed into place, and only
// then does `latest` (itself replaced by rename) point at it: a crash never leaves a half-written
// checkpoint as the latest.
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job_spec.h"
#include "safetensors.h"

namespace moe::rt {

struct CheckpointData {
  std::vector<TensorRef> weights;    // model.safetensors
  std::vector<TensorRef> optimizer;  // optimizer.safetensors (may be empty: weights only)
  nlohmann::json trainer_state = nlohmann::json::object();  // "step", "spec" are added by save
};

// Writes ROOT/step-NNNNNNNN atomically, points ROOT/latest at it and removes all but the newest
// `keep` checkpoints. Returns the checkpoint's directory.
std::filesystem::path save_checkpoint(const std::filesystem::path& root, int64_t step, const JobSpec& spec,
                                      const CheckpointData& data, int keep = 2);

// DIR may be a checkpoint itself (holds model.safetensors) or a root with a `latest` file.
std::filesystem::path resolve_checkpoint_dir(const std::filesystem::path& dir);

struct LoadedCheckpoint {
  std::filesystem::path dir;
  nlohmann::json config;         // config.json
  nlohmann::json trainer_state;  // trainer_state.json (empty object when absent: weights only)
  JobSpec spec;                  // trainer_state's spec, or the defaults with config.json's model
  TensorMap weights;
  TensorMap optimizer;           // empty unless requested and present
};

// Reads and validates a checkpoint (see resolve_checkpoint_dir); one-line errors name the file.
LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir, bool with_optimizer);

// The RNG of a run as text (the standard's exact textual form) and back.
std::string rng_to_string(const std::mt19937_64& rng);
std::mt19937_64 rng_from_string(const std::string& text, const std::string& origin);

}  // namespace moe::rt
