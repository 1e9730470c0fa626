#pragma once
// `moe-runtime train` with runtime.backend: cuda — the app's side of the CUDA seam
// (runtime/cuda/cuda_training.h): maps the train flags to CudaTrainOptions, reports like the CPU
// path and returns the exit code. Builds without CUDA refuse with one line.
#include <atomic>
#include <string>

#include "job_spec.h"

namespace moe::rt {

int run_cuda_train_command(const JobSpec& spec, bool multi_process, const std::string& metrics,
                           const std::string& checkpoint_dir, const std::string& resume, double time_limit_s,
                           const std::atomic<int>* stop_signal);

}  // namespace moe::rt
