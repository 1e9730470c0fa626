#pragma once
// What the runtime's flat all-to-all sends for a placement, from the rows each EP member routes to
// each logical expert (docs/placement.md "Traffic"). The counting rule is the dispatcher's
// (runtime/comm/all_to_all_dispatcher.cpp, count_bytes): a member's bytes are the rows it sends to
// other members' slots × bytes per row; rows to its own slots are not bytes; a peer on the same
// node (equal node_of_member entries, or no node list) is intra-node, any other is inter-node.
// Replicas are chosen by ReplicaChoice::split (replica_choice.h), as the runtime chooses them. The
// shared core of the trace simulator and of placement benchmarks.
#include <cstdint>
#include <string>
#include <vector>

#include "expert_placement.h"
#include "hardware_profile.h"

namespace moe {

struct LinkBytes {
  double intra = 0, inter = 0;
  double total() const { return intra + inter; }
};

struct PlacementTraffic {
  int64_t members = 0;
  // Dispatch-forward rows [from × members + to], rows to itself included (they are computed, not
  // sent). Combine-forward is its transpose; the backward pass repeats both.
  std::vector<int64_t> rows;
  // Off-rank bytes each member sends in each exchange, in the runtime's phase order.
  std::vector<LinkBytes> dispatch_fwd, combine_fwd, combine_bwd, dispatch_bwd;
  std::vector<int64_t> computed;  // rows each member's experts compute (its load)
  double max_load = 0, mean_load = 0;
  double imbalance = 1;  // max_load / mean_load (1 when nothing is computed)
  // Totals over members and the four exchanges of one MoE layer and micro-batch.
  double intra_bytes = 0, inter_bytes = 0;
  double inter_share() const { return intra_bytes + inter_bytes > 0 ? inter_bytes / (intra_bytes + inter_bytes) : 0; }
};

// Exact: unit_rows[member][logical expert][unit] = kept rows that member routes to that expert in
// one forward pass, per unit (a sequence of its micro-batch: ReplicaChoice sends a unit's rows of
// one expert to one replica, as the runtime does). node_of_member as in PlacementInput (empty: one
// node); replica_choice "spread" or "local"; bytes_per_row = d_model × sizeof(dtype) (cost_model.h
// a2a_bytes_per_copy). Throws moe::Error on mismatched sizes or a negative count.
PlacementTraffic placement_traffic(const LayerPlacement& placement,
                                   const std::vector<std::vector<std::vector<int64_t>>>& unit_rows,
                                   const std::vector<int64_t>& node_of_member, const std::string& replica_choice,
                                   double bytes_per_row);
// From totals: sent[member][logical expert] rows spread as evenly as possible over `units` units
// per member (ReplicaChoice::split_even): exact for experts without replicas, an estimate of the
// replica split otherwise.
PlacementTraffic placement_traffic(const LayerPlacement& placement, const std::vector<std::vector<int64_t>>& sent,
                                   int64_t units, const std::vector<int64_t>& node_of_member,
                                   const std::string& replica_choice, double bytes_per_row);

// Expected seconds of the four flat exchanges (one MoE layer, one micro-batch) on `hw`, with the
// cost model's link rates (intra_node_bw / inter_node_bw × comm_efficiency, per device and
// direction, both links at once): an exchange lasts as long as the busiest member's slower link,
// counting what it sends and what it receives on each link. With balanced traffic this is the cost
// model's flat term, max(intra / bw_intra, inter / bw_inter), summed over the four exchanges.
double placement_a2a_seconds(const PlacementTraffic& traffic, const HardwareProfile& hw);

}  // namespace moe
