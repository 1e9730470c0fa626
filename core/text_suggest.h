#pragma once
// "Did you mean" suggestions: the closest candidate by edit distance, if it is close enough.
#include <string>
#include <vector>

namespace moe {

size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `word`, or "" when none is within a third of its length (at least 2).
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace moe
