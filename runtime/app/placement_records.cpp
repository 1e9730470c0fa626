#include "placement_records.h"

#include <algorithm>
#include <set>
#include <utility>

namespace moe::rt {

std::vector<metrics::PlacementRecord> placement_records(const Placement& placement, int64_t step,
                                                        const std::vector<int64_t>& layer_index) {
  std::vector<metrics::PlacementRecord> out;
  for (size_t l = 0; l < placement.size(); ++l) {
    metrics::PlacementRecord r;
    r.step = step;
    r.layer = l < layer_index.size() ? layer_index[l] : static_cast<int64_t>(l);
    r.slots_per_rank = placement[l].slots_per_rank;
    r.phy_to_log = placement[l].phy_to_log;
    out.push_back(std::move(r));
  }
  return out;
}

metrics::CoselectionRecord coselection_record(int64_t step, int64_t layer, int64_t experts,
                                              const std::vector<int64_t>& counts, int64_t top) {
  auto at = [&](int64_t a, int64_t b) { return counts[static_cast<size_t>(std::min(a, b) * experts + std::max(a, b))]; };
  std::set<std::pair<int64_t, int64_t>> kept;  // (a, b), a < b: ascending in the record
  std::vector<int64_t> partners;
  for (int64_t a = 0; a < experts; ++a) {
    partners.clear();
    for (int64_t b = 0; b < experts; ++b)
      if (b != a && at(a, b) > 0) partners.push_back(b);
    // Largest counts first, ties by partner index: the same record on every run.
    std::sort(partners.begin(), partners.end(), [&](int64_t x, int64_t y) {
      return at(a, x) != at(a, y) ? at(a, x) > at(a, y) : x < y;
    });
    for (size_t i = 0; i < partners.size() && static_cast<int64_t>(i) < top; ++i)
      kept.emplace(std::min(a, partners[i]), std::max(a, partners[i]));
  }
  metrics::CoselectionRecord r;
  r.step = step, r.layer = layer, r.experts = experts;
  for (const auto& [a, b] : kept) r.pairs.insert(r.pairs.end(), {a, b, at(a, b)});
  return r;
}

}  // namespace moe::rt
