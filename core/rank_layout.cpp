#include "rank_layout.h"

#include <map>
#include <tuple>

#include "error.h"

namespace moe {

const RankGroup& RankLayout::group_of(const std::vector<RankGroup>& kind, int64_t rank) const {
  for (const auto& g : kind)
    for (int64_t r : g)
      if (r == rank) return g;
  throw Error("rank " + std::to_string(rank) + ": not in the layout of " +
              std::to_string(world_size()) + " ranks");
}

namespace {

// Groups ranks by a key of their coordinates, in ascending rank order within each group.
template <typename KeyFn>
std::vector<RankGroup> group_by(const std::vector<RankCoord>& ranks, KeyFn key) {
  std::map<decltype(key(ranks[0])), RankGroup> groups;
  for (const auto& c : ranks) groups[key(c)].push_back(c.rank);
  std::vector<RankGroup> out;
  for (auto& [k, g] : groups) out.push_back(std::move(g));
  return out;
}

}  // namespace

RankLayout make_rank_layout(int64_t tp, int64_t ep, int64_t dp, int64_t pp, int64_t gpus_per_node) {
  if (tp < 1 || ep < 1 || dp < 1 || pp < 1 || gpus_per_node < 1)
    throw Error("parallel: dp, tp, pp, ep and gpus_per_node must be at least 1");
  RankLayout l;
  l.tp = tp, l.ep = ep, l.dp = dp, l.pp = pp, l.gpus_per_node = gpus_per_node;
  int64_t world = tp * ep * dp * pp;
  l.ranks.reserve(world);
  for (int64_t r = 0; r < world; ++r) {
    RankCoord c;
    c.rank = r;
    c.tp = r % tp;
    c.ep = (r / tp) % ep;
    c.dp = (r / (tp * ep)) % dp;
    c.pp = r / (tp * ep * dp);
    c.node = r / gpus_per_node;
    c.local_rank = r % gpus_per_node;
    l.ranks.push_back(c);
  }
  using T = std::tuple<int64_t, int64_t, int64_t>;
  l.tp_groups = group_by(l.ranks, [](const RankCoord& c) { return T{c.ep, c.dp, c.pp}; });
  l.ep_groups = group_by(l.ranks, [](const RankCoord& c) { return T{c.tp, c.dp, c.pp}; });
  l.dp_groups = group_by(l.ranks, [](const RankCoord& c) { return T{c.tp, c.ep, c.pp}; });
  l.pp_groups = group_by(l.ranks, [](const RankCoord& c) { return T{c.tp, c.ep, c.dp}; });
  l.expert_dp_groups = l.dp_groups;  // same experts ⇔ same EP index (and tp shard, pp stage)
  l.dense_dp_groups =
      group_by(l.ranks, [](const RankCoord& c) { return std::pair<int64_t, int64_t>{c.tp, c.pp}; });
  return l;
}

RankLayout make_rank_layout(const ParallelSpec& p) {
  return make_rank_layout(p.tp, p.ep, p.dp, p.pp, p.gpus_per_node);
}

std::vector<int64_t> first_ep_group_nodes(const ParallelSpec& p) {
  if (p.tp < 1 || p.ep < 1 || p.gpus_per_node < 1) throw Error("rank layout: sizes must be positive");
  std::vector<int64_t> nodes;
  for (int64_t i = 0; i < p.ep; ++i) nodes.push_back(p.tp * i / p.gpus_per_node);  // rank tp + TP·ep = TP·i
  return nodes;
}

}  // namespace moe
