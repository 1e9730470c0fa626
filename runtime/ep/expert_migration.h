#pragma once
// Dynamic re-placement (docs/placement.md §8): moves every rank's expert slots to a new placement.
// Afterwards each slot holds the values and AdamW moments of the logical expert the new placement
// puts there, bit for bit, so training goes on exactly as if the experts had always been there.
// An expert a member already held is copied locally; one it lacked comes from the expert's lowest
// current holder through one all-reduce over the EP group of the moved experts (the others add
// zeros; float bits travel as integers, so the sums are exact).
#include <cstdint>
#include <vector>

#include "communicator.h"
#include "expert_replicas.h"
#include "optimizer.h"
#include "param.h"

namespace moe::rt::ep {

struct Migration {
  int64_t bytes = 0;    // values and moments received by members that lacked the expert
  int64_t experts = 0;  // (layer, expert) pairs some member received
  double ms = 0;        // wall time of the move on this rank
};

// `experts`: this rank's expert params in params() order (ExpertReplicas::local). Collective over
// `ep`. Renames the params after the logical expert they now hold. Both placements must have the
// same slots per rank.
Migration migrate_experts(comm::Communicator& ep, const ExpertReplicas& from, const Placement& to,
                          const std::vector<Param*>& experts, AdamW* optimizer);

}  // namespace moe::rt::ep
