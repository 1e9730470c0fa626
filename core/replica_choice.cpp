#include "replica_choice.h"

#include "error.h"

namespace moe {

ReplicaChoice::ReplicaChoice(const LayerPlacement& placement, const std::vector<int64_t>& node_of_member,
                             int64_t member, const std::string& policy)
    : member_(member), candidates_(placement.log_to_phy) {
  if (policy != "spread" && policy != "local")
    throw Error("placement.replica_choice: '" + policy + "' is not one of: spread, local");
  if (policy == "spread" || node_of_member.empty()) return;
  const int64_t my_node = node_of_member.at(member);
  for (auto& slots : candidates_) {
    std::vector<int64_t> local;
    for (int64_t s : slots)
      if (node_of_member.at(placement.rank_of_slot(s)) == my_node) local.push_back(s);
    if (!local.empty()) slots = std::move(local);
  }
}

void ReplicaChoice::split(int64_t e, const std::vector<int64_t>& rows, std::vector<int64_t>& slot_counts) const {
  for (size_t u = 0; u < rows.size(); ++u) slot_counts[slot(e, static_cast<int64_t>(u))] += rows[u];
}

void ReplicaChoice::split_even(int64_t e, int64_t count, int64_t units, std::vector<int64_t>& slot_counts) const {
  const std::vector<int64_t>& c = candidates_[e];
  const int64_t k = static_cast<int64_t>(c.size());
  if (k == 1 || units < 1) {
    slot_counts[c[0]] += count;
    return;
  }
  // Unit u goes to candidate (u + member) mod k; spread the rows evenly over the units.
  for (int64_t u = 0; u < units; ++u) slot_counts[slot(e, u)] += count / units + (u < count % units ? 1 : 0);
}

}  // namespace moe
