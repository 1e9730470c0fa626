// What the CUDA training path accepts (see cuda_training.h): host-side checks, always built.
#include "cuda_training.h"

#include "cpu_runtime_limits.h"
#include "error.h"
#include "spec_validation.h"

namespace moe::rt::cuda {

void check_cuda_training_spec(const JobSpec& spec, const CudaTrainOptions& options) {
  const auto& p = spec.parallel;
  if (spec.runtime.backend != "cuda")
    throw Error("runtime.backend: '" + spec.runtime.backend +
                "' is not cuda (the CUDA training path)");
  if (spec.runtime.dtype != "fp32" && spec.runtime.dtype != "bf16")
    throw Error("runtime.dtype: " + spec.runtime.dtype +
                " is not supported on the cuda backend (fp32 or bf16)");
  if (spec.model.attention != "gqa")
    throw Error("model.attention: " + spec.model.attention +
                " is not supported by the cuda backend (only gqa)");
  if (const std::string why = unmodelled_in_runtime(spec); !why.empty()) throw Error(why);
  if (options.multi_process || p.world_size() > 1)
    throw Error("parallel: runtime.backend=cuda trains on one GPU for now (dp·tp·pp·ep = " +
                std::to_string(p.world_size()) +
                "); multi-GPU expert parallelism over NCCL is not wired in yet");
  if (!options.checkpoint_dir.empty() && !options.save_checkpoint)
    throw Error("--checkpoint-dir: this caller of the cuda training path cannot write checkpoints");
  if (!options.resume.empty())
    throw Error("--resume: runtime.backend=cuda cannot resume from a checkpoint yet");
  if (spec.model.vocab_size < 256)
    throw Error("model.vocab_size: " + std::to_string(spec.model.vocab_size) +
                " is smaller than the 256 byte tokens");
  throw_if_invalid(validate_spec(spec));
}

}  // namespace moe::rt::cuda
