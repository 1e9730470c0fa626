// The CPU backend's limits (see cpu_runtime_limits.h).
#include "cpu_runtime_limits.h"

#include <algorithm>

#include "spec_validation.h"

namespace moe {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
const char* kOneProcessPerRank = " needs one process per rank: add --nproc-per-node N (N × --nnodes = dp·tp·pp·ep)";
}  // namespace

std::string unmodelled_in_runtime(const JobSpec& spec) {
  const ParallelSpec& p = spec.parallel;
  if (spec.runtime.fp8 != "off")
    return "runtime.fp8: " + spec.runtime.fp8 + " — moe-runtime has no FP8 GEMMs (the cost model and the exports take it; use off to train here)";
  if (p.batch_overlap)
    return "parallel.batch_overlap: moe-runtime overlaps the all-to-all within a micro-batch only (parallel.overlap_chunks); use false";
  if (spec.train.recompute == "full")
    return "train.recompute: full — moe-runtime recomputes whole pipeline stages (stage), not layer by layer; use stage or none";
  return "";
}

std::string runtime_recompute(const JobSpec& spec) {
  return spec.parallel.pp > 1 && spec.train.recompute == "none" ? "stage" : spec.train.recompute;
}

std::string cpu_model_refusal(const JobSpec& spec, bool multi_process) {
  const ParallelSpec& p = spec.parallel;
  if (spec.runtime.dtype != "fp32") return "runtime.dtype: " + spec.runtime.dtype + " is not supported on the cpu backend (only fp32)";
  if (spec.model.attention != "gqa")
    return "model.attention: " + spec.model.attention + " is not supported by the CPU runtime (only gqa)";
  if (p.tp > 1 && !multi_process) return "parallel.tp: " + str(p.tp) + " — tensor parallelism" + kOneProcessPerRank;
  if (p.tp > 1 && spec.model.n_kv_heads % p.tp != 0)
    return "parallel.tp: " + str(p.tp) + " does not divide model.n_kv_heads (" + str(spec.model.n_kv_heads) +
           "): moe-runtime splits the KV heads over tp";
  if (p.tp > 1 && spec.model.vocab_size % p.tp != 0)
    return "parallel.tp: " + str(p.tp) + " does not divide model.vocab_size (" + str(spec.model.vocab_size) +
           "): moe-runtime splits the embedding and the head by vocabulary over tp";
  const int64_t shared_width = spec.model.moe.shared_experts * spec.model.moe.d_shared_expert;
  if (p.tp > 1 && shared_width > 0 && shared_width % p.tp != 0)
    return "parallel.tp: " + str(p.tp) + " does not divide the shared experts' width (model.moe.shared_experts × "
           "d_shared_expert = " + str(shared_width) + "): moe-runtime splits them over tp";
  if (p.tp > 1 && spec.model.moe.first_dense_layers > 0 && spec.model.d_ff % p.tp != 0)
    return "parallel.tp: " + str(p.tp) + " does not divide model.d_ff (" + str(spec.model.d_ff) + ")";
  if (p.etp > 1 && p.tp % p.etp != 0) return "parallel.etp: " + str(p.etp) + " must divide parallel.tp (" + str(p.tp) + ")";
  if (p.etp > 1 && spec.model.moe.d_expert % p.etp != 0)
    return "parallel.etp: " + str(p.etp) + " does not divide model.moe.d_expert (" + str(spec.model.moe.d_expert) + ")";
  if (std::string why = unmodelled_in_runtime(spec); !why.empty()) return why;
  if (p.pp > 1 && !multi_process) return "parallel.pp: " + str(p.pp) + " — pipeline parallelism" + kOneProcessPerRank;
  if (p.pp > spec.model.n_layers)
    return "parallel.pp: " + str(p.pp) + " exceeds model.n_layers (" + str(spec.model.n_layers) + "): a stage would be empty";
  if (p.vpp > 1 && p.pp * p.vpp > spec.model.n_layers)
    return "parallel.vpp: " + str(p.pp) + " stages × " + str(p.vpp) + " chunks exceed model.n_layers (" +
           str(spec.model.n_layers) + "): a chunk would be empty";
  if (p.ep > 1 && !multi_process) return "parallel.ep: " + str(p.ep) + " — expert parallelism" + kOneProcessPerRank;
  if (p.dp > 1 && !multi_process) return "parallel.dp: " + str(p.dp) + " — data parallelism" + kOneProcessPerRank;
  return "";
}

std::string cpu_training_refusal(const JobSpec& spec, bool multi_process) {
  if (std::string why = cpu_model_refusal(spec, multi_process); !why.empty()) return why;
  if (spec.parallel.vpp > 1 && spec.train.grad_accum % spec.parallel.pp != 0)
    return "parallel.vpp: the interleaved schedule needs train.grad_accum (" + str(spec.train.grad_accum) +
           ") to be a multiple of parallel.pp (" + str(spec.parallel.pp) + "), as Megatron-Core's does";
  if (spec.parallel.tp > 1 && spec.train.micro_batch % spec.parallel.tp != 0)
    return "train.micro_batch: " + str(spec.train.micro_batch) + " is not divisible by parallel.tp (" +
           str(spec.parallel.tp) + "): each tp rank routes whole sequences of it through the MoE blocks";
  if (spec.model.vocab_size < 256)
    return "model.vocab_size: " + str(spec.model.vocab_size) + " is smaller than the 256 byte tokens";
  if (std::string why = deterministic_conflict(spec); !why.empty()) return "parallel.hierarchical_a2a: " + why;
  return "";
}

LocalRunFit local_run_fit(const JobSpec& spec, int64_t cores) {
  if (spec.runtime.backend != "cpu")
    return {false, "runtime.backend " + spec.runtime.backend + ": needs a moe-runtime built with CUDA and NVIDIA GPUs; "
                   "this check covers the cpu backend"};
  if (std::string why = cpu_training_refusal(spec, true); !why.empty()) return {false, "cannot run here: " + why};
  const int64_t world = spec.parallel.world_size();
  cores = std::max<int64_t>(cores, 1);
  const std::string recompute = runtime_recompute(spec) != spec.train.recompute
                                    ? "; its pipeline stages recompute forwards (train.recompute stage)" : "";
  if (world <= cores)
    return {true, "runs here: " + str(world) + " rank(s) on " + str(cores) + " core(s)" + recompute};
  return {true, "runs here, oversubscribed: " + str(world) + " ranks share " + str(cores) +
                    " core(s), each rank about " + str((world + cores - 1) / cores) + "× slower than on a core of its own" + recompute};
}

}  // namespace moe
