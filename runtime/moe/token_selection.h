#pragma once
// Which expert gets which token, and with what gate weight — from the router's scores.
//   token choice: each token takes its top-k experts by score + balancing bias (the bias only
//     selects, DeepSeek-V3), optionally within its best `topk_group` of `n_group` expert groups;
//     gate weights are the k unbiased scores, renormalised to sum to 1 (norm_topk_prob) and
//     times routed_scaling_factor. Assignment a = t · k + j, j-th choice of token t.
//     Capacity C (MoeConfig::capacity) per expert, unless dropless: an expert keeps
//       position:    its assignments in token order, the first C (later tokens dropped first);
//       probability: its C assignments with the largest gate weight (ties: earlier token).
//     Dropped assignments keep their gate weight slot (their token's weights are not renormalised
//     again, Switch style: the token's residual carries it) but go to no expert.
//   expert choice: each expert takes its top-C tokens by score (ties: earlier token), gate weight =
//     score · routed_scaling_factor (no renormalisation). Assignment a = e · C + c, the C tokens
//     of an expert in token order.
// Every selection is deterministic (ties broken by index), so the CUDA and multi-rank versions
// can reproduce it exactly.
#include <cstdint>
#include <vector>

#include "moe_config.h"

namespace moe::rt {

struct Assignments {
  int64_t num_tokens = 0;
  int64_t num_experts = 0;
  int64_t top_k = 0;        // token choice: assignments per token; expert choice: 0
  int64_t capacity = 0;     // per-expert limit applied (0: dropless)
  std::vector<int32_t> token;   // [A]
  std::vector<int32_t> expert;  // [A] the chosen expert
  std::vector<int32_t> route;   // [A] expert if kept, -1 if dropped: what the dispatcher moves
  std::vector<int64_t> counts;  // [E] assignments that chose each expert, before capacity
  std::vector<int64_t> dropped; // [E] of those, dropped by capacity
  int64_t tokens_without_expert = 0;

  int64_t size() const { return static_cast<int64_t>(token.size()); }
};

// Chooses the assignments and their gate weights (weight[a], a < A) from scores [T×E] (softmax or
// sigmoid outputs) and the per-expert selection bias [E] (all zero without bias balancing).
// `apply_capacity` false is dropless (eval's force_dropless); expert choice always uses its C.
template <typename T>
void select_tokens(const MoeConfig& config, const T* scores, const float* bias, int64_t tokens,
                   bool apply_capacity, Assignments& out, std::vector<T>& weight);

// The capacity step alone, for dispatchers that decide drops themselves (Runtime II: after the
// per-expert counts are exchanged): keeps at most `capacity` of each expert's routed assignments
// by drop_policy (position: assignment order; probability: largest weight[a], ties: earlier),
// sets route[a] = -1 for the rest, and recomputes dropped and tokens_without_expert.
template <typename T>
void apply_capacity_limit(const MoeConfig& config, const T* weight, int64_t capacity, Assignments& out);

// Tokens none of whose assignments is routed (route < 0 everywhere, or never chosen).
int64_t count_tokens_without_expert(const Assignments& assignments);

// Backward of the gate weights: given dweight[A], adds dL/dscores into dscores [T×E]
// (renormalisation and scaling differentiated; top-k choice and drops are piecewise constant).
template <typename T>
void select_tokens_backward(const MoeConfig& config, const T* scores, const Assignments& assignments,
                            const T* dweight, T* dscores);

}  // namespace moe::rt
