#include "node_placement.h"

#include <cmath>
#include <map>
#include <numeric>

#include "error.h"
#include "placement_strategies.h"

namespace moe {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
}  // namespace

NodeLayout node_layout(const PlacementInput& in, const std::string& strategy, int64_t units) {
  const int64_t E = in.num_experts, ep = in.ep;
  const std::string who = "placement." + strategy + ": ";
  if (E < 1 || ep < 1) throw Error(who + "needs num_experts ≥ 1 and ep ≥ 1");
  if (!in.node_of_member.empty() && static_cast<int64_t>(in.node_of_member.size()) != ep)
    throw Error(who + str(static_cast<int64_t>(in.node_of_member.size())) + " node entries for " + str(ep) +
                " EP members");
  if (in.slots_per_rank == 0 && E % ep != 0)
    throw Error("placement.slots_per_rank: 0 means num_experts / ep, but ep (" + str(ep) +
                ") does not divide num_experts (" + str(E) + "); give the slots per rank");
  std::map<int64_t, std::vector<int64_t>> by_node;
  for (int64_t m = 0; m < ep; ++m) by_node[in.node_of_member.empty() ? 0 : in.node_of_member[m]].push_back(m);
  NodeLayout out;
  for (auto& [node, members] : by_node) out.members.push_back(std::move(members));
  const int64_t N = out.nodes(), per_node = ep / N;
  for (const auto& members : out.members)
    if (static_cast<int64_t>(members.size()) != per_node)
      throw Error(who + "the EP members are spread unevenly over the " + str(N) + " nodes (a node holds " +
                  str(static_cast<int64_t>(members.size())) + ", expected " + str(per_node) + ")");
  if (units % N != 0)
    throw Error(who + str(N) + " nodes do not divide num_experts (" + str(E) +
                "), so the experts cannot be split evenly over the nodes");
  out.per_rank = in.slots() / ep;
  out.node_experts = E / N;
  if (in.slots() < E)
    throw Error("placement.slots_per_rank: " + str(out.per_rank) + " × ep (" + str(ep) + ") slots cannot hold " +
                str(E) + " experts");
  if (out.per_rank > out.node_experts)
    throw Error("placement.slots_per_rank: " + str(out.per_rank) + " slots per rank exceed the " +
                str(out.node_experts) + " experts of a node: a rank would hold two replicas of one expert");
  return out;
}

std::vector<double> layer_load(const PlacementInput& in, int64_t l, const std::string& strategy) {
  std::vector<double> w(static_cast<size_t>(in.num_experts), 1.0);
  if (l >= static_cast<int64_t>(in.load.size()) || in.load[static_cast<size_t>(l)].empty()) return w;
  const std::vector<double>& row = in.load[static_cast<size_t>(l)];
  if (static_cast<int64_t>(row.size()) != in.num_experts)
    throw Error("placement." + strategy + ": load of layer " + str(l) + " has " + str(static_cast<int64_t>(row.size())) +
                " entries, expected num_experts (" + str(in.num_experts) + ")");
  for (size_t e = 0; e < row.size(); ++e)
    if (!std::isfinite(row[e]) || row[e] < 0)
      throw Error("placement." + strategy + ": load of layer " + str(l) + ", expert " + str(static_cast<int64_t>(e)) +
                  " is not a finite count ≥ 0");
  if (std::accumulate(row.begin(), row.end(), 0.0) > 0) w = row;
  return w;
}

void place_on_node(const NodeLayout& layout, int64_t n, const std::vector<int64_t>& experts,
                   const std::vector<double>& w, std::vector<int64_t>& map) {
  const std::vector<int64_t>& members = layout.members[static_cast<size_t>(n)];
  PlacementInput sub;
  sub.num_experts = static_cast<int64_t>(experts.size());
  sub.ep = static_cast<int64_t>(members.size());
  sub.slots_per_rank = layout.per_rank;
  sub.load.emplace_back();
  for (int64_t e : experts) sub.load[0].push_back(w[static_cast<size_t>(e)]);
  const LayerPlacement lp = place_replicate(sub).front();
  for (int64_t s = 0; s < lp.slots(); ++s)
    map[static_cast<size_t>(members[static_cast<size_t>(lp.rank_of_slot(s))] * layout.per_rank + s % layout.per_rank)] =
        experts[static_cast<size_t>(lp.phy_to_log[static_cast<size_t>(s)])];
}

}  // namespace moe
