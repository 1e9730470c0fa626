#pragma once
// Co-selection counts (docs/placement.md): how many tokens chose both expert a and expert b, the
// graph data-driven placement partitions. Only kept assignments count (a dropped one moves no row).
#include <cstdint>
#include <vector>

#include "token_selection.h"

namespace moe::rt {

// counts [E×E] += one per token and pair a < b of its kept experts, at counts[a·E + b].
void add_coselection(const Assignments& assignments, std::vector<int64_t>& counts);

}  // namespace moe::rt
