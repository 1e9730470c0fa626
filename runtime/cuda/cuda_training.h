#pragma once
// `runtime.backend: cuda` for `moe-runtime train`: the one seam the app calls (runtime/app/
// commands.cpp). Plain C++ (no CUDA headers), so the app compiles the same with or without CUDA;
// a build without CUDA links cuda_training_off.cpp, whose run_cuda_training() refuses with
// "runtime.backend=cuda: this moe-runtime was built without CUDA".
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "job_spec.h"

namespace moe::rt {
class MixtralModel;
class AdamW;
}  // namespace moe::rt

namespace moe::rt::cuda {

struct CudaTrainOptions {
  std::string metrics = "-";             // --metrics FILE|-
  std::filesystem::path checkpoint_dir;  // --checkpoint-dir (empty: none)
  std::filesystem::path resume;          // --resume (empty: fresh run)
  double time_limit_s = 0;               // --time-limit (0: none)
  const std::atomic<int>* stop_signal = nullptr;
  bool multi_process = false;  // launched as one rank of several (not supported on CUDA yet)
  // Writes a checkpoint under checkpoint_dir of `model` (the weights and balancing biases, copied
  // back from the device) and `optimizer` (moments and step count) after optimizer step `step`
  // with the sampler at `data_position`; returns its directory. Set by the app
  // (runtime/app/model_state.h); without it --checkpoint-dir is refused.
  std::function<std::string(MixtralModel& model, AdamW& optimizer, int64_t step,
                            int64_t data_position)>
      save_checkpoint;
};

struct CudaTrainResult {
  std::string status;  // completed | failed | cancelled
  std::string reason;
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;
};

// Whether this build has the CUDA backend (MOE_HAVE_CUDA).
bool cuda_backend_built();

// What the CUDA training path accepts, checked on the host before any device call: throws
// moe::Error naming the field (runtime.backend, runtime.dtype, model.attention, parallel.*,
// --checkpoint-dir without a writer, --resume) for what it cannot do yet, then the spec's own
// validation.
void check_cuda_training_spec(const JobSpec& spec, const CudaTrainOptions& options);

// Trains the spec on the GPU and writes the metrics stream (same contract as the CPU path).
// Throws moe::Error with a one-line reason when it cannot start (no CUDA in this build, no GPU,
// an unsupported setting).
CudaTrainResult run_cuda_training(const JobSpec& spec, const CudaTrainOptions& options);

}  // namespace moe::rt::cuda
