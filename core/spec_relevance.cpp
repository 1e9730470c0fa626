#include "spec_relevance.h"

#include "spec_choices.h"

namespace moe {

namespace {

bool under(std::string_view path, std::string_view prefix) {
  return path.substr(0, prefix.size()) == prefix;
}

bool has_replicas(const JobSpec& s) {
  const int64_t ep = s.parallel.ep, slots = s.placement.slots_per_rank;
  return slots > 0 && ep > 0 && slots * ep > s.model.moe.num_experts;
}

}  // namespace

std::string unused_field_reason(const JobSpec& s, std::string_view path) {
  const ModelSpec& m = s.model;
  const ParallelSpec& p = s.parallel;
  if (under(path, "model.mla.") && m.attention != "mla")
    return "only with model.attention mla (it is " + m.attention + ")";
  if ((path == "model.head_dim" || path == "model.n_kv_heads") && m.attention == "mla")
    return "not with model.attention mla: its heads are sized by model.mla";
  if (path == "model.d_ff" && m.moe.first_dense_layers == 0)
    return "only with dense layers (model.moe.first_dense_layers > 0): every layer is MoE";
  if (path == "model.moe.d_shared_expert" && m.moe.shared_experts == 0)
    return "only with shared experts (model.moe.shared_experts > 0)";
  if (path == "routing.drop_policy") {
    if (is_expert_choice(s.routing)) return "expert choice drops no token copy: each expert takes its own tokens";
    if (s.routing.dropless()) return "dropless routing (routing.capacity_factor 0) drops nothing";
  }
  if (path == "routing.topk_group" && s.routing.n_group <= 1)
    return "only with group-limited routing (routing.n_group > 1)";
  if (path == "routing.bias_balancing.update_rate" && !s.routing.bias_balancing.enabled)
    return "only with routing.bias_balancing.enabled";
  if ((path == "parallel.sequence_parallel" || path == "parallel.etp") && p.tp <= 1)
    return "only with tensor parallelism (parallel.tp > 1)";
  if ((path == "parallel.pp_layers" || path == "parallel.vpp") && p.pp <= 1)
    return "only with pipeline parallelism (parallel.pp > 1)";
  if ((path == "parallel.hierarchical_a2a" || path == "parallel.overlap_chunks") && p.ep <= 1)
    return "only with expert parallelism (parallel.ep > 1): no all-to-all otherwise";
  if (path == "placement.map" && s.placement.strategy != "explicit")
    return "only with placement.strategy explicit (it is " + s.placement.strategy + ")";
  if (path == "placement.replica_choice" && !has_replicas(s))
    return "only with replicas (placement.slots_per_rank above model.moe.num_experts / parallel.ep)";
  if (path == "train.data.path" && s.train.data.kind == "synthetic")
    return "synthetic data (train.data.kind) reads no file";
  return {};
}

std::string_view zero_meaning(std::string_view path) {
  if (path == "model.head_dim") return "auto: d_model / n_heads";
  if (path == "model.mla.q_lora_rank") return "none: queries projected directly";
  if (path == "placement.slots_per_rank") return "auto: num_experts / ep";
  if (path == "placement.replace_every" || path == "placement.stats_every" || path == "runtime.checkpoint_every")
    return "never";
  if (path == "train.eval_every") return "at the end only";
  if (path == "runtime.threads") return "auto: cores / local ranks";
  return {};
}

}  // namespace moe
