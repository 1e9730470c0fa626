#pragma once
// The communicators one rank needs for expert parallelism, built from core's rank layout
// (docs/architecture.md 3.2) — never re-derived here:
//   ep         the EP group: tokens go to their experts by all-to-all
//   expert_dp  ranks holding the same experts: expert gradients are all-reduced here
//   dense_dp   ranks holding the same dense weights (dp × ep): dense gradients are all-reduced here
//   ep_intra / ep_inter  the two stages of the hierarchical all-to-all: this rank's EP peers on its
//              own node, and its EP peers with the same local index on the other nodes.
//   tp, pp     tensor-parallel shards (same ep, dp, pp) and pipeline stages (same tp, ep, dp); built
//              only when that dimension is > 1 (issue 15), null otherwise
//   stage      every rank of this pipeline stage (same pp): the MoE blocks' routing spans it; built
//              only when pp > 1 (otherwise that is the world)
//   dp         data-parallel replicas (same tp, ep, pp): the same ranks as expert_dp while experts
//              are not split over tp differently from attention, so it is that communicator
#include <memory>

#include "communicator.h"
#include "rank_layout.h"

namespace moe::rt::comm {

struct CommGroups {
  Communicator* world = nullptr;  // not owned
  std::unique_ptr<Communicator> ep;
  std::unique_ptr<Communicator> expert_dp;
  std::unique_ptr<Communicator> dense_dp;
  std::unique_ptr<Communicator> ep_intra;
  std::unique_ptr<Communicator> ep_inter;
  std::unique_ptr<Communicator> tp;  // null when tp = 1
  std::unique_ptr<Communicator> pp;  // null when pp = 1
  std::unique_ptr<Communicator> stage;  // null when pp = 1
  Communicator* dp = nullptr;        // = expert_dp.get(), not owned
};

// Collective over the world: every rank calls it with the same layout.
// Throws when the layout's world size differs from the world communicator's.
CommGroups make_comm_groups(Communicator& world, const RankLayout& layout);

// The hierarchical stage groups of `rank` inside its EP group, as global ranks (intra: same node;
// inter: same position within the node's share of the group). Pure, for tests and the cost model.
void hierarchical_groups(const RankLayout& layout, int64_t rank, RankGroup& intra, RankGroup& inter);

}  // namespace moe::rt::comm
