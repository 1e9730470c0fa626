#include "expert_placement.h"

#include "error.h"
#include "spec_choices.h"

namespace moe {

namespace {

Placement place_uniform(const PlacementInput& in) {
  if (in.num_experts < 1 || in.ep < 1 || in.num_experts % in.ep != 0)
    throw Error("placement.uniform: ep (" + std::to_string(in.ep) + ") must divide num_experts (" +
                std::to_string(in.num_experts) + ")");
  LayerPlacement layer;
  layer.slots_per_rank = in.num_experts / in.ep;
  layer.phy_to_log.resize(in.num_experts);
  layer.log_to_phy.resize(in.num_experts);
  for (int64_t e = 0; e < in.num_experts; ++e) {
    layer.phy_to_log[e] = e;
    layer.log_to_phy[e] = {e};
  }
  return Placement(std::max<int64_t>(in.layers, 1), layer);
}

}  // namespace

std::vector<std::string> placement_strategies() {
  std::vector<std::string> out;
  for (const Choice& c : choices_of("placement.strategy")) out.emplace_back(c.name);
  return out;
}

Placement place_experts(const std::string& strategy, const PlacementInput& input) {
  if (strategy == "uniform") return place_uniform(input);
  throw Error("placement.strategy: '" + strategy + "' is not one of: " + choice_names("placement.strategy"));
}

}  // namespace moe
