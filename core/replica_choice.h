#pragma once
// Which replica of a logical expert a sender's rows go to (docs/placement.md). The rule is a pure
// function of the placement, the sender and the row's unit, so the runtime, the trace simulator
// and the cost model agree on it:
//   - candidates of (sender member m, expert e): all of e's slots ("spread"), or those on m's node
//     when there are any ("local");
//   - the rows of the sender's unit u (a sequence of its micro-batch: deterministic arithmetic sums
//     expert gradients per sequence, so a sequence's rows of one expert must stay together) go to
//     candidate (u + m) mod |candidates|: units alternate between replicas, staggered by sender so
//     that senders do not all start on the same replica.
// Replicas hold identical weights, so the choice changes where a row is computed, never its result.
#include <cstdint>
#include <string>
#include <vector>

#include "expert_placement.h"

namespace moe {

class ReplicaChoice {
 public:
  // policy: spec_choices.h's placement.replica_choice ("spread" or "local"); node_of_member as in
  // PlacementInput (empty: one node).
  ReplicaChoice(const LayerPlacement& placement, const std::vector<int64_t>& node_of_member, int64_t member,
                const std::string& policy);
  // The slot that this member's rows of unit `unit` routed to logical expert e go to.
  int64_t slot(int64_t e, int64_t unit) const {
    const std::vector<int64_t>& c = candidates_[e];
    return c[static_cast<size_t>((unit + member_) % static_cast<int64_t>(c.size()))];
  }
  // rows[u] rows of e in each unit u of this member: adds each unit's rows to slot_counts[slot].
  void split(int64_t e, const std::vector<int64_t>& rows, std::vector<int64_t>& slot_counts) const;
  // Without per-unit counts: `count` rows of e over `units` units, as even as units allow (an
  // estimate when e has replicas; exact otherwise).
  void split_even(int64_t e, int64_t count, int64_t units, std::vector<int64_t>& slot_counts) const;

 private:
  int64_t member_ = 0;
  std::vector<std::vector<int64_t>> candidates_;  // [logical expert] → slots
};

}  // namespace moe
