#include "coselection.h"

#include <algorithm>
#include <utility>

namespace moe::rt {

void add_coselection(const Assignments& asg, std::vector<int64_t>& counts) {
  const int64_t E = asg.num_experts;
  counts.resize(static_cast<size_t>(E * E), 0);
  // (token, expert) of the kept assignments, grouped by token (expert choice lists them by expert).
  std::vector<std::pair<int32_t, int32_t>> kept;
  kept.reserve(asg.token.size());
  for (size_t a = 0; a < asg.token.size(); ++a)
    if (asg.route[a] >= 0) kept.emplace_back(asg.token[a], asg.route[a]);
  std::sort(kept.begin(), kept.end());
  for (size_t i = 0; i < kept.size();) {
    size_t j = i;
    while (j < kept.size() && kept[j].first == kept[i].first) ++j;
    for (size_t p = i; p < j; ++p)
      for (size_t q = p + 1; q < j; ++q)  // sorted by expert within the token: p's expert < q's
        if (kept[p].second != kept[q].second) ++counts[static_cast<size_t>(kept[p].second * E + kept[q].second)];
    i = j;
  }
}

}  // namespace moe::rt
