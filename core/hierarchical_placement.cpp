// EPLB's hierarchical mode (DeepSeek, rebalance_experts_hierarchical), docs/placement.md: contiguous
// expert groups are packed onto nodes balancing the nodes' load, so a group never spans nodes; then
// each node replicates its hottest experts in its own spare slots and packs them onto its members.
// The groups are the uniform placement's member blocks (E/ep experts; single experts when ep does
// not divide E): PlacementInput does not carry routing.n_group yet.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "error.h"
#include "placement_strategies.h"

namespace moe {

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

std::vector<double> layer_load(const PlacementInput& in, int64_t l) {
  std::vector<double> w(static_cast<size_t>(in.num_experts), 1.0);
  if (l >= static_cast<int64_t>(in.load.size())) return w;
  const std::vector<double>& row = in.load[static_cast<size_t>(l)];
  if (static_cast<int64_t>(row.size()) != in.num_experts)
    throw Error("placement.hierarchical: load of layer " + str(l) + " has " + str(static_cast<int64_t>(row.size())) +
                " entries, expected num_experts (" + str(in.num_experts) + ")");
  for (double v : row)
    if (!std::isfinite(v) || v < 0)
      throw Error("placement.hierarchical: load of layer " + str(l) + " has a count < 0 or not finite");
  if (std::accumulate(row.begin(), row.end(), 0.0) > 0) w = row;
  return w;
}

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
  if (E < 1 || ep < 1) throw Error("placement.hierarchical: needs num_experts ≥ 1 and ep ≥ 1");
  if (!in.node_of_member.empty() && static_cast<int64_t>(in.node_of_member.size()) != ep)
    throw Error("placement.hierarchical: " + str(static_cast<int64_t>(in.node_of_member.size())) +
                " node entries for " + str(ep) + " EP members");
  if (in.slots_per_rank == 0 && E % ep != 0)
    throw Error("placement.slots_per_rank: 0 means num_experts / ep, but ep (" + str(ep) +
                ") does not divide num_experts (" + str(E) + "); give the slots per rank");
  // Members of each node, nodes in ascending id order.
  std::map<int64_t, std::vector<int64_t>> by_node;
  for (int64_t m = 0; m < ep; ++m) by_node[in.node_of_member.empty() ? 0 : in.node_of_member[m]].push_back(m);
  std::vector<std::vector<int64_t>> node_members;
  for (auto& [node, members] : by_node) node_members.push_back(std::move(members));
  const int64_t N = static_cast<int64_t>(node_members.size()), per_node = ep / N;
  for (const auto& members : node_members)
    if (static_cast<int64_t>(members.size()) != per_node)
      throw Error("placement.hierarchical: the EP members are spread unevenly over the " + str(N) +
                  " nodes (a node holds " + str(static_cast<int64_t>(members.size())) + ", expected " + str(per_node) +
                  ")");
  const int64_t groups = E % ep == 0 ? ep : E, group_size = E / groups;
  if (groups % N != 0)
    throw Error("placement.hierarchical: " + str(N) + " nodes do not divide num_experts (" + str(E) +
                "), so the experts cannot be split evenly over the nodes");
  const int64_t per_rank = in.slots() / ep, node_experts = E / N;
  if (in.slots() < E)
    throw Error("placement.slots_per_rank: " + str(per_rank) + " × ep (" + str(ep) + ") slots cannot hold " + str(E) +
                " experts");
  if (per_rank > node_experts)
    throw Error("placement.slots_per_rank: " + str(per_rank) + " slots per rank exceed the " + str(node_experts) +
                " experts of a node: a rank would hold two replicas of one expert");

  Placement out;
  for (int64_t l = 0; l < std::max<int64_t>(in.layers, 1); ++l) {
    const std::vector<double> w = layer_load(in, l);
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
      PlacementInput sub;
      sub.num_experts = node_experts, sub.ep = per_node, sub.slots_per_rank = per_rank;
      sub.load.emplace_back();
      for (int64_t e : experts) sub.load[0].push_back(w[e]);
      const LayerPlacement lp = place_replicate(sub).front();
      for (int64_t s = 0; s < lp.slots(); ++s)
        map[node_members[n][lp.rank_of_slot(s)] * per_rank + s % per_rank] = experts[lp.phy_to_log[s]];
    }
    out.push_back(layer_from_map(map, E, ep));
  }
  return out;
}

}  // namespace moe
