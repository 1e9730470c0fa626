#pragma once
// The placement records of the metrics stream (docs/placement.md): the placement in force, and the
// sampled co-selection counts of a step.
#include <cstdint>
#include <vector>

#include "expert_placement.h"
#include "metrics_records.h"

namespace moe::rt {

// Partners kept per expert in a coselection record: 256 experts × 8 × 3 ints per layer and sample.
inline constexpr int64_t kCoselectionTop = 8;

// One record per MoE layer (`layer_index`: the model's layer numbers).
std::vector<metrics::PlacementRecord> placement_records(const Placement& placement, int64_t step,
                                                        const std::vector<int64_t>& layer_index);

// counts [E×E] (a < b at a·E + b) → the record: each expert's `top` largest partners, each pair once.
metrics::CoselectionRecord coselection_record(int64_t step, int64_t layer, int64_t experts,
                                              const std::vector<int64_t>& counts, int64_t top = kCoselectionTop);

}  // namespace moe::rt
