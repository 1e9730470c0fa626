#pragma once
// What the node-aware strategies (hierarchical, data_driven) share: the checked split of the EP
// members over nodes, a layer's load, and the packing of one node's experts onto its members
// (place_replicate within the node). Internal to the strategies (placement_strategies.h).
#include <cstdint>
#include <string>
#include <vector>

#include "expert_placement.h"

namespace moe {

struct NodeLayout {
  std::vector<std::vector<int64_t>> members;  // [node] → its EP members, nodes in ascending id order
  int64_t per_rank = 0;                       // slots per member
  int64_t node_experts = 0;                   // experts per node (num_experts / nodes)
  int64_t nodes() const { return static_cast<int64_t>(members.size()); }
};

// Checks `in` for `strategy`, which splits `units` (experts or groups of them) evenly over the
// nodes; throws moe::Error naming the strategy or the field.
NodeLayout node_layout(const PlacementInput& in, const std::string& strategy, int64_t units);

// Layer l's load: the input's row, or every expert 1 when missing or all zero (nothing seen yet).
std::vector<double> layer_load(const PlacementInput& in, int64_t l, const std::string& strategy);

// Replicates and packs `experts` (loads `w`, by logical expert) onto node n's members: writes their
// slots of `map` (slot m·per_rank + i of member m).
void place_on_node(const NodeLayout& layout, int64_t n, const std::vector<int64_t>& experts,
                   const std::vector<double>& w, std::vector<int64_t>& map);

}  // namespace moe
