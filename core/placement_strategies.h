#pragma once
// The load-aware placement strategies behind place_experts (expert_placement.h), one file each.
// Each is a pure function of its input and throws moe::Error naming the input it cannot place.
#include "expert_placement.h"

namespace moe {

// Partitions each layer's co-selection graph over the nodes so that experts often chosen together
// by one token share a node, balancing the nodes' load; then experts onto the node's members.
Placement place_data_driven(const PlacementInput& input);
// EPLB's hierarchical mode: expert groups onto nodes, replicas within a node, then onto members.
Placement place_hierarchical(const PlacementInput& input);
// EPLB's global mode: the spare slots (slots_per_rank above E/ep) replicate the hottest experts
// (largest load per replica first); then slots are packed onto members balancing their load.
Placement place_replicate(const PlacementInput& input);

}  // namespace moe
