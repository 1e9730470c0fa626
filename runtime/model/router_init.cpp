// The clustered router initialisation (see router_init.h).
#include "router_init.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "error.h"

namespace moe::rt {

namespace {
// The own part's weight against the group's direction: rows of one group correlate at
// 1 / (1 + kOwn²) ≈ 0.99, so a group's members rank next to each other for most tokens.
constexpr double kOwn = 0.1;
}  // namespace

std::vector<int64_t> clustered_router_groups(int64_t num_experts, int64_t top_k, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(num_experts));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int64_t> group(order.size());
  for (size_t i = 0; i < order.size(); ++i) group[static_cast<size_t>(order[i])] = static_cast<int64_t>(i) / top_k;
  return group;
}

void init_clustered_router(std::span<float> weight, int64_t num_experts, int64_t d_model, int64_t top_k,
                           double init_std, uint64_t seed) {
  if (static_cast<int64_t>(weight.size()) != num_experts * d_model || top_k < 1)
    throw Error("model.moe.router_init: router weight has " + std::to_string(weight.size()) + " values, expected " +
                std::to_string(num_experts * d_model));
  const std::vector<int64_t> group = clustered_router_groups(num_experts, top_k, seed);
  const int64_t groups = (num_experts + top_k - 1) / top_k;
  // Logits of unit scale on a normalised hidden state (|x| ≈ √d), as a trained router's: a row of
  // init_std (0.02) would be outgrown by AdamW's first few steps of ≈ lr each, and the planted
  // groups with it.
  const double unit = std::max(init_std, 1.0 / std::sqrt(static_cast<double>(d_model)));
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> direction(static_cast<size_t>(groups * d_model));
  for (double& v : direction) v = normal(rng);
  for (int64_t e = 0; e < num_experts; ++e) {
    const int64_t g = group[static_cast<size_t>(e)];
    const double scale = unit * (1.0 + static_cast<double>(groups - 1 - g) / static_cast<double>(groups));
    for (int64_t c = 0; c < d_model; ++c)
      weight[static_cast<size_t>(e * d_model + c)] =
          static_cast<float>(scale * (direction[static_cast<size_t>(g * d_model + c)] + kOwn * normal(rng)));
  }
}

}  // namespace moe::rt
