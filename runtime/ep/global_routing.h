#pragma once
// Routing decisions taken over every data-parallel rank (the dense_dp group: dp × ep ranks), so that
// N processes with T tokens each decide exactly what one process with the concatenated N·T tokens
// (rank order = the order of the data slices) decides:
//   - the aux loss's load share f_i uses the per-expert counts summed over all ranks (each rank's
//     aux loss then uses its own P_i, and the mean over ranks is the one-process aux loss);
//   - capacity mode: C = capacity(N·T) per expert, and the drops are the one-process drops —
//     position: an expert keeps the first C assignments in global order (rank r starts counting at
//     the sum of the counts of ranks before it); probability: the C largest gate weights among all
//     ranks' assignments of the expert (ties: earlier global assignment).
// One all-gather of (tokens, counts[E]) per layer and micro-batch; probability mode adds one of the
// (expert, weight) pairs; router jitter adds one of the token counts (the noise is keyed by the
// global token index, so it is the one-process noise). Expert choice gathers the scores instead:
// its top-C per expert spans the whole batch.
#include <cstdint>
#include <vector>

#include "communicator.h"
#include "moe_compute.h"

namespace moe::rt::ep {

class GlobalRouting final : public moe::rt::RoutingSync<float> {
 public:
  explicit GlobalRouting(comm::Communicator& group) : group_(group) {}
  void decide(const MoeConfig& config, const float* weight, bool apply_capacity, Assignments& assignments,
              std::vector<int64_t>& loss_counts) override;
  // Σ tokens of the ranks before this one (one all-gather of the token counts).
  int64_t token_offset(int64_t tokens) override;
  // Expert choice: all-gathers the router scores of the group (padded to the longest rank), runs
  // the one-process selection on the concatenated batch (identical on every rank) and keeps the
  // assignments of this rank's tokens.
  bool select_expert_choice(const MoeConfig& config, const float* scores, const float* bias, int64_t tokens,
                            Assignments& assignments, std::vector<float>& weight,
                            std::vector<int64_t>& loss_counts) override;

 private:
  comm::Communicator& group_;
  std::vector<int64_t> mine_, all_;
};

}  // namespace moe::rt::ep
