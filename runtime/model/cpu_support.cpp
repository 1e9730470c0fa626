// The CPU runtime's limits (see cpu_support.h).
#include "cpu_support.h"

#include "error.h"
#include "spec_choices.h"
#include "spec_validation.h"

namespace moe::rt {

void check_model_supported(const JobSpec& spec, bool multi_process) {
  const auto& p = spec.parallel;
  if (spec.runtime.backend == "cuda")
    throw Error("runtime.backend: cuda is not available in this build of moe-runtime (built without CUDA); use cpu");
  if (spec.runtime.backend != "cpu")
    throw Error("runtime.backend: '" + spec.runtime.backend + "' is not one of: " + choice_names("runtime.backend"));
  if (spec.runtime.dtype != "fp32")
    throw Error("runtime.dtype: " + spec.runtime.dtype + " is not supported on the cpu backend (only fp32)");
  if (spec.model.attention != "gqa")
    throw Error("model.attention: " + spec.model.attention + " is not supported by the CPU runtime (only gqa)");
  if (p.tp > 1 && !multi_process)
    throw Error("parallel.tp: " + std::to_string(p.tp) + " — tensor parallelism needs one process per rank: add --nproc-per-node N (N × --nnodes = dp·tp·ep)");
  if (p.tp > 1 && spec.model.n_kv_heads % p.tp != 0)
    throw Error("parallel.tp: " + std::to_string(p.tp) + " does not divide model.n_kv_heads (" +
                std::to_string(spec.model.n_kv_heads) + "): moe-runtime splits the KV heads over tp");
  if (p.tp > 1 && spec.model.moe.first_dense_layers > 0 && spec.model.d_ff % p.tp != 0)
    throw Error("parallel.tp: " + std::to_string(p.tp) + " does not divide model.d_ff (" + std::to_string(spec.model.d_ff) + ")");
  if (p.pp > 1) throw Error("parallel.pp: " + std::to_string(p.pp) + " — pipeline parallelism is not supported by moe-runtime (use 1)");
  if (p.ep > 1 && !multi_process)
    throw Error("parallel.ep: " + std::to_string(p.ep) + " — expert parallelism needs one process per rank: add --nproc-per-node N (N × --nnodes = dp·tp·ep)");
  if (p.dp > 1 && !multi_process)
    throw Error("parallel.dp: " + std::to_string(p.dp) + " — data parallelism needs one process per rank: add --nproc-per-node N (N × --nnodes = dp·tp·ep)");
  throw_if_invalid(validate_model(spec.model));
}

void check_supported_by_cpu_runtime(const JobSpec& spec, bool multi_process) {
  check_model_supported(spec, multi_process);
  if (spec.parallel.tp > 1 && spec.train.micro_batch % spec.parallel.tp != 0)
    throw Error("train.micro_batch: " + std::to_string(spec.train.micro_batch) + " is not divisible by parallel.tp (" +
                std::to_string(spec.parallel.tp) + "): each tp rank routes whole sequences of it through the MoE blocks");
  if (spec.model.vocab_size < 256)
    throw Error("model.vocab_size: " + std::to_string(spec.model.vocab_size) + " is smaller than the 256 byte tokens");
  if (const std::string why = deterministic_conflict(spec); !why.empty()) throw Error("parallel.hierarchical_a2a: " + why);
  throw_if_invalid(validate_spec(spec));  // after the runtime's own refusals, which say more
}

}  // namespace moe::rt
