// moe-runtime train on the CUDA backend (see cuda_train_command.h).
#include "cuda_train_command.h"

#include <cstdio>

#include "cuda_training.h"
#include "model_state.h"

namespace moe::rt {

int run_cuda_train_command(const JobSpec& spec, bool multi_process, const std::string& metrics,
                           const std::string& checkpoint_dir, const std::string& resume, double time_limit_s,
                           const std::atomic<int>* stop_signal) {
  cuda::CudaTrainOptions o;
  o.metrics = metrics;
  o.checkpoint_dir = checkpoint_dir;
  o.resume = resume;
  o.time_limit_s = time_limit_s;
  o.stop_signal = stop_signal;
  o.multi_process = multi_process;
  if (!checkpoint_dir.empty()) {  // the CPU path's checkpoint files, from the state the GPU copied back
    const auto seed = static_cast<uint64_t>(spec.train.seed);
    o.save_checkpoint = [checkpoint_dir, seed](MixtralModel& model, AdamW& optimizer, int64_t step,
                                               int64_t data_position) {
      RunState state;
      state.step = step;
      state.data_position = data_position;
      state.rng.seed(seed ^ 0x6A177E5ull);  // unused on the GPU (its jitter is a counter hash)
      return save_training_checkpoint(checkpoint_dir, model, &optimizer, state).string();
    };
  }
  const cuda::CudaTrainResult r = cuda::run_cuda_training(spec, o);  // throws moe::Error when it cannot start
  std::fprintf(stderr, "moe-runtime: %s after %lld steps on cuda%s%s\n", r.status.c_str(),
               static_cast<long long>(r.steps), r.reason.empty() ? "" : ": ", r.reason.c_str());
  if (r.status == "completed") return 0;
  if (r.status == "cancelled") return 128 + (stop_signal ? stop_signal->load() : 0);
  return 1;
}

}  // namespace moe::rt
