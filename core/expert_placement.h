#pragma once
// Expert placement as a pure function, after DeepSeek's EPLB: the per-layer load of each logical
// expert goes in; out come, per layer, the logical expert held by each physical slot and the
// physical slots (replicas) of each logical expert. Physical slot s lives on EP rank s / slots_per_rank.
// `uniform` ignores the load (expert e on EP rank ⌊e / (E/ep)⌋); data-driven, hierarchical and
// replicating strategies implement the same signature.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct PlacementInput {
  int64_t num_experts = 0;      // logical experts per layer
  int64_t ep = 1;               // EP ranks
  int64_t physical_experts = 0;  // slots over all EP ranks (= num_experts without replication)
  int64_t gpus_per_node = 1;    // for hierarchical strategies
  std::vector<std::vector<double>> load;  // [layer][logical expert]; may be empty for uniform
  int64_t layers = 1;
};

struct LayerPlacement {
  std::vector<int64_t> phy_to_log;               // [physical slot] → logical expert
  std::vector<std::vector<int64_t>> log_to_phy;  // [logical expert] → its physical slots
  int64_t slots_per_rank = 0;
  int64_t rank_of_slot(int64_t slot) const { return slot / slots_per_rank; }
};

using Placement = std::vector<LayerPlacement>;  // one per layer

Placement place_experts(const std::string& strategy, const PlacementInput& input);
// The strategies place_experts knows: spec_choices.h's placement.strategy list.
std::vector<std::string> placement_strategies();

}  // namespace moe
