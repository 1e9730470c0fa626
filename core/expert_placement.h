#pragma once
// Expert placement as data (docs/placement.md), after DeepSeek's EPLB: a placement maps each
// logical expert of each MoE layer to one or more physical slots; EP member p holds slots
// [p·slots_per_rank, (p+1)·slots_per_rank). A logical expert with several slots is replicated:
// every replica holds the same weights, a token goes to one of them (replica_choice.h) and the
// replicas' gradients are summed. Strategies are pure functions: load statistics and topology in,
// placement out. The runtime, the cost model, the simulator and the studio all take a Placement.
#include <cstdint>
#include <string>
#include <vector>

#include "job_spec.h"

namespace moe {

struct PlacementInput {
  int64_t num_experts = 0;     // logical experts per layer
  int64_t ep = 1;              // EP members
  int64_t slots_per_rank = 0;  // physical slots per EP member; 0: num_experts / ep (no replicas)
  // Node of each EP member ([ep]; empty: all on one node). Members on one node exchange over the
  // fast link; data-driven and hierarchical strategies keep co-selected experts on one node.
  std::vector<int64_t> node_of_member;
  int64_t layers = 1;
  // Recent load of each logical expert: [layer][expert] (tokens routed). Empty or a missing layer:
  // every expert equally loaded.
  std::vector<std::vector<double>> load;
  // Co-selection counts: [layer][a·E + b] = tokens that chose both a and b (symmetric, diagonal
  // unused). Empty or a missing layer: no co-selection known.
  std::vector<std::vector<double>> coselection;

  int64_t slots() const;  // ep × slots_per_rank (resolved)
  int64_t nodes() const;  // distinct entries of node_of_member (1 when empty)
};

struct LayerPlacement {
  std::vector<int64_t> phy_to_log;               // [physical slot] → logical expert
  std::vector<std::vector<int64_t>> log_to_phy;  // [logical expert] → its physical slots, ascending
  int64_t slots_per_rank = 0;
  int64_t rank_of_slot(int64_t slot) const { return slot / slots_per_rank; }
  int64_t slots() const { return static_cast<int64_t>(phy_to_log.size()); }
  bool operator==(const LayerPlacement&) const = default;
};

using Placement = std::vector<LayerPlacement>;  // one per MoE layer

// A layer's placement from its slot → logical expert map (fills log_to_phy); throws naming the
// first problem: a slot count that is not a multiple of ep, an expert out of range, an expert with
// no slot, or two replicas of one expert on the same member.
LayerPlacement layer_from_map(const std::vector<int64_t>& phy_to_log, int64_t num_experts, int64_t ep);

// The strategies (spec_choices.h's placement.strategy list, except "explicit").
Placement place_experts(const std::string& strategy, const PlacementInput& input);
std::vector<std::string> placement_strategies();

// The placement a spec asks for, for its MoE layers: placement.map when the strategy is
// "explicit", else the strategy applied to `load`/`coselection` (empty at the start of a run:
// uniform load). Throws naming the spec field.
Placement placement_for_spec(const JobSpec& spec, const std::vector<std::vector<double>>& load = {},
                             const std::vector<std::vector<double>>& coselection = {});
// The PlacementInput of a spec (sizes and EP members' nodes from the rank layout), without loads.
PlacementInput placement_input(const JobSpec& spec);

// True when every layer is the uniform placement without replicas (the runtime's fast path).
bool is_uniform(const Placement& placement, int64_t num_experts);

}  // namespace moe
