#pragma once
// The MoE layer's settings, read once from the job spec (docs/architecture.md 3.1) and checked here,
// so the router, the selection and the experts see plain numbers instead of strings.
#include <cstdint>

#include "job_spec.h"
#include "spec_choices.h"

namespace moe::rt {

using moe::DropPolicy;
using moe::RoutingType;
using moe::ScoreFn;

struct MoeConfig {
  int64_t d_model = 0;
  int64_t num_experts = 0;
  int64_t top_k = 0;
  int64_t d_expert = 0;
  // Shared experts (DeepSeek): n always-on experts of width d_shared_expert are computed as one
  // SwiGLU FFN of width n · d_shared_expert (the same function: their outputs are summed).
  int64_t d_shared = 0;  // 0: none

  RoutingType type = RoutingType::token_choice;
  ScoreFn score = ScoreFn::softmax;
  double capacity_factor = 0.0;  // 0: dropless (token choice)
  DropPolicy drop_policy = DropPolicy::position;
  double aux_loss_coef = 0.0;
  double z_loss_coef = 0.0;
  double jitter = 0.0;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  bool bias_balancing = false;
  double bias_update_rate = 0.0;

  // Reads and checks the spec; throws moe::Error naming the field for what this layer can't do.
  static MoeConfig from_spec(const JobSpec& spec);
  // Checks the numbers (also for configs built by hand in tests and benches).
  void validate() const;

  // Tokens one expert may take for T tokens:
  //   C = ceil(capacity_factor · T · top_k / num_experts), at least 1,
  // and for expert choice at most T (an expert takes a token once). Expert choice with
  // capacity_factor 0 uses factor 1. Token choice dropless has no capacity (returns T · top_k).
  int64_t capacity(int64_t tokens) const;
  bool dropless() const { return type == RoutingType::token_choice && capacity_factor == 0.0; }
};

}  // namespace moe::rt
