#pragma once
// Rank layout (docs/architecture.md 3.2): rank = tp + TP·(ep + EP·(dp + DP·pp)), node = rank / gpus_per_node.
// One function computes every rank's coordinates and every communication group; the runtime, the
// designer grid and the cost model all use it.
#include <cstdint>
#include <vector>

#include "job_spec.h"

namespace moe {

struct RankCoord {
  int64_t rank = 0;
  int64_t tp = 0, ep = 0, dp = 0, pp = 0;
  int64_t node = 0;
  int64_t local_rank = 0;  // index within its node
};

using RankGroup = std::vector<int64_t>;  // global ranks, ascending

struct RankLayout {
  int64_t tp = 1, ep = 1, dp = 1, pp = 1, gpus_per_node = 1;
  std::vector<RankCoord> ranks;  // indexed by global rank
  // Each list partitions the world; every rank is in exactly one group of each kind.
  std::vector<RankGroup> tp_groups;     // same (ep, dp, pp): tensor-parallel shards
  std::vector<RankGroup> ep_groups;     // same (tp, dp, pp): exchange tokens by all-to-all
  std::vector<RankGroup> dp_groups;     // same (tp, ep, pp): data-parallel replicas
  std::vector<RankGroup> pp_groups;     // same (tp, ep, dp): pipeline stages
  std::vector<RankGroup> expert_dp_groups;  // hold the same experts: same (tp, ep, pp), all dp
  std::vector<RankGroup> dense_dp_groups;   // hold the same dense weights: same (tp, pp), all ep×dp

  int64_t world_size() const { return static_cast<int64_t>(ranks.size()); }
  int64_t nodes() const { return (world_size() + gpus_per_node - 1) / gpus_per_node; }
  int64_t rank_of(int64_t tp_i, int64_t ep_i, int64_t dp_i, int64_t pp_i) const {
    return tp_i + tp * (ep_i + ep * (dp_i + dp * pp_i));
  }
  // The group of `kind` that contains `rank`.
  const RankGroup& group_of(const std::vector<RankGroup>& kind, int64_t rank) const;
};

RankLayout make_rank_layout(int64_t tp, int64_t ep, int64_t dp, int64_t pp, int64_t gpus_per_node);
RankLayout make_rank_layout(const ParallelSpec& parallel);

// The nodes of the first EP group's members (tp = dp = pp = 0), relative to its first member's node,
// from the same formulas without building the whole layout (validation asks for it on every edit;
// the layout of a 2,048-rank design took 1.9 ms to build).
std::vector<int64_t> first_ep_group_nodes(const ParallelSpec& parallel);

}  // namespace moe
