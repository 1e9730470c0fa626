// EPLB's hierarchical mode (DeepSeek, rebalance_experts_hierarchical), docs/placement.md: contiguous
// expert groups are packed onto nodes balancing the nodes' load, so a group never spans nodes; then
// each node replicates its hottest experts in its own spare slots and packs them onto its members.
// The groups are the uniform placement's member blocks (E/ep experts; single experts when ep does
// not divide E): PlacementInput does not carry routing.n_group yet.
#include <algorithm>

#include "error.h"
#include "node_placement.h"
#include "placement_strategies.h"

namespace moe {

namespace {

// Packs `items` (with loads w) into `bins` bins of items/bins each, balancing the bins' load:
// place_replicate without spare slots is exactly that packing. Returns the bin of each item.
std::vector<int64_t> balanced_bins(const std::vector<double>& w, int64_t bins) {
  const int64_t n = static_cast<int64_t>(w.size());
  std::vector<int64_t> bin(static_cast<size_t>(n), 0);
  if (bins == 1) return bin;
  PlacementInput sub;
  sub.num_experts = n, sub.ep = bins, sub.slots_per_rank = n / bins, sub.load = {w};
  const LayerPlacement lp = place_replicate(sub).front();
  for (int64_t s = 0; s < lp.slots(); ++s) bin[lp.phy_to_log[s]] = lp.rank_of_slot(s);
  return bin;
}

}  // namespace

Placement place_hierarchical(const PlacementInput& in) {
  const int64_t E = in.num_experts, ep = in.ep;
  // Groups: the uniform placement's member blocks (single experts when ep does not divide E).
  const int64_t groups = E >= 1 && ep >= 1 && E % ep == 0 ? ep : E, group_size = groups > 0 ? E / groups : 1;
  const NodeLayout nodes = node_layout(in, "hierarchical", groups);
  const int64_t N = nodes.nodes();

  Placement out;
  for (int64_t l = 0; l < std::max<int64_t>(in.layers, 1); ++l) {
    const std::vector<double> w = layer_load(in, l, "hierarchical");
    std::vector<double> group_load(static_cast<size_t>(groups), 0.0);
    for (int64_t e = 0; e < E; ++e) group_load[e / group_size] += w[e];
    const std::vector<int64_t> node_of_group = balanced_bins(group_load, N);
    std::vector<int64_t> map(static_cast<size_t>(in.slots()));
    for (int64_t n = 0; n < N; ++n) {
      // The node's experts (its groups, ascending), replicated and packed within the node.
      std::vector<int64_t> experts;
      for (int64_t g = 0; g < groups; ++g)
        if (node_of_group[g] == n)
          for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e) experts.push_back(e);
      place_on_node(nodes, n, experts, w, map);
    }
    out.push_back(layer_from_map(map, E, ep));
  }
  return out;
}

}  // namespace moe
