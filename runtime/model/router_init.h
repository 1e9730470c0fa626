#pragma once
// The "clustered" router initialisation (model.moe.router_init): a planted co-selection pattern for
// placement experiments. The experts are cut, by a seeded permutation, into groups of top_k; each
// expert's router row is its group's shared direction plus a small own part, so a token whose hidden
// state points towards a group picks that whole group. Trained models show such co-activation
// (experts specialising together); a fresh "normal" router spreads its pairs, which leaves
// co-location little to gain (docs/placement.md §7).
#include <cstdint>
#include <span>
#include <vector>

namespace moe::rt {

// Overwrites `weight` ([num_experts, d_model], row-major) from `seed`. The rows have the scale of
// max(init_std, 1/√d_model) per element (logits of unit scale, as a trained router's, so the
// plant outlasts the first optimizer steps), group g's × (1 + (G − 1 − g) / G), so the groups also
// differ in popularity (a skewed load, as real routers have). Every rank computes the same rows
// from the same seed.
void init_clustered_router(std::span<float> weight, int64_t num_experts, int64_t d_model, int64_t top_k,
                           double init_std, uint64_t seed);

// The expert groups init_clustered_router plants: group of each expert (for tests and docs).
std::vector<int64_t> clustered_router_groups(int64_t num_experts, int64_t top_k, uint64_t seed);

}  // namespace moe::rt
