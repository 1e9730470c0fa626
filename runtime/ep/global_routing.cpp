// Global routing decisions over the data-parallel ranks (see global_routing.h).
#include "global_routing.h"

#include <algorithm>
#include <cstring>

#include "error.h"

namespace moe::rt::ep {

int64_t GlobalRouting::token_offset(int64_t tokens) {
  const int64_t P = group_.size(), me = group_.rank();
  std::vector<int64_t> all(static_cast<size_t>(P), 0);
  group_.all_gather(&tokens, all.data(), sizeof(int64_t));
  int64_t offset = 0;
  for (int64_t r = 0; r < me; ++r) offset += all[r];
  return offset;
}

bool GlobalRouting::select_expert_choice(const MoeConfig& config, const float* scores, const float* bias, int64_t tokens,
                                         Assignments& asg, std::vector<float>& weight, std::vector<int64_t>& loss_counts) {
  const int64_t P = group_.size(), me = group_.rank(), E = config.num_experts;
  std::vector<int64_t> sizes(static_cast<size_t>(P), 0);
  group_.all_gather(&tokens, sizes.data(), sizeof(int64_t));
  int64_t longest = 0, total = 0, offset = 0;
  for (int64_t r = 0; r < P; ++r) {
    longest = std::max(longest, sizes[r]);
    if (r < me) offset += sizes[r];
    total += sizes[r];
  }
  std::vector<float> padded(static_cast<size_t>(longest * E), 0.0f), gathered(static_cast<size_t>(P * longest * E));
  if (tokens > 0) std::memcpy(padded.data(), scores, static_cast<size_t>(tokens * E) * sizeof(float));
  if (longest > 0) group_.all_gather(padded.data(), gathered.data(), padded.size() * sizeof(float));
  std::vector<float> all(static_cast<size_t>(total * E));
  int64_t at = 0;
  for (int64_t r = 0; r < P; ++r) {
    std::memcpy(all.data() + at * E, gathered.data() + r * longest * E, static_cast<size_t>(sizes[r] * E) * sizeof(float));
    at += sizes[r];
  }
  Assignments global;
  std::vector<float> global_weight;
  select_tokens(config, all.data(), bias, total, true, global, global_weight);
  asg = Assignments{};
  asg.num_tokens = tokens;
  asg.num_experts = E;
  asg.top_k = 0;
  asg.capacity = global.capacity;
  asg.counts.assign(static_cast<size_t>(E), 0);
  asg.dropped.assign(static_cast<size_t>(E), 0);
  weight.clear();
  for (int64_t a = 0; a < global.size(); ++a) {
    const int64_t t = global.token[a] - offset;
    if (t < 0 || t >= tokens) continue;
    asg.token.push_back(static_cast<int32_t>(t));
    asg.expert.push_back(global.expert[a]);
    asg.route.push_back(global.route[a]);
    ++asg.counts[global.expert[a]];
    weight.push_back(global_weight[a]);
  }
  asg.tokens_without_expert = count_tokens_without_expert(asg);
  loss_counts = global.counts;
  return true;
}

void GlobalRouting::decide(const MoeConfig& config, const float* weight, bool apply_capacity, Assignments& asg,
                           std::vector<int64_t>& loss_counts) {
  const int64_t E = asg.num_experts, P = group_.size(), me = group_.rank();
  // [tokens, counts[E]] of every rank.
  mine_.assign(static_cast<size_t>(E + 1), 0);
  mine_[0] = asg.num_tokens;
  std::copy(asg.counts.begin(), asg.counts.end(), mine_.begin() + 1);
  all_.assign(static_cast<size_t>(P * (E + 1)), 0);
  group_.all_gather(mine_.data(), all_.data(), mine_.size() * sizeof(int64_t));
  loss_counts.assign(static_cast<size_t>(E), 0);
  std::vector<int64_t> before(static_cast<size_t>(E), 0);  // counts of the ranks before this one
  int64_t total_tokens = 0, max_assignments = 0;
  for (int64_t r = 0; r < P; ++r) {
    const int64_t* row = all_.data() + r * (E + 1);
    total_tokens += row[0];
    int64_t a = 0;
    for (int64_t e = 0; e < E; ++e) {
      loss_counts[e] += row[1 + e];
      if (r < me) before[e] += row[1 + e];
      a += row[1 + e];
    }
    max_assignments = std::max(max_assignments, a);
  }
  asg.capacity = 0;
  asg.dropped.assign(static_cast<size_t>(E), 0);
  if (apply_capacity && !config.dropless()) {
    const int64_t C = config.capacity(total_tokens), A = asg.size();
    asg.capacity = C;
    if (config.drop_policy == DropPolicy::position) {
      std::vector<int64_t> used = before;
      for (int64_t a = 0; a < A; ++a)  // a = t·k + j: token order, after the ranks before this one
        if (asg.route[a] >= 0 && used[asg.route[a]]++ >= C) asg.route[a] = -1;
    } else {
      // Every rank's (expert, weight) pairs, padded to the longest; the same stable sort as one
      // process over the global assignment order.
      struct Pair {
        int32_t expert;
        float weight;
      };
      std::vector<Pair> local(static_cast<size_t>(max_assignments), Pair{-1, 0.0f});
      for (int64_t a = 0; a < A; ++a) local[a] = {asg.route[a], weight[a]};
      std::vector<Pair> all(static_cast<size_t>(P * max_assignments));
      group_.all_gather(local.data(), all.data(), local.size() * sizeof(Pair));
      std::vector<std::vector<int64_t>> per_expert(static_cast<size_t>(E));
      for (int64_t g = 0; g < P * max_assignments; ++g)
        if (all[g].expert >= 0) per_expert[all[g].expert].push_back(g);
      const int64_t mine_first = me * max_assignments;
      for (auto& list : per_expert) {
        if (static_cast<int64_t>(list.size()) <= C) continue;
        std::stable_sort(list.begin(), list.end(), [&](int64_t x, int64_t y) { return all[x].weight > all[y].weight; });
        for (size_t i = static_cast<size_t>(C); i < list.size(); ++i)
          if (list[i] >= mine_first && list[i] < mine_first + A) asg.route[list[i] - mine_first] = -1;
      }
    }
    for (int64_t a = 0; a < A; ++a)
      if (asg.route[a] < 0) ++asg.dropped[asg.expert[a]];
  }
  asg.tokens_without_expert = count_tokens_without_expert(asg);
}

}  // namespace moe::rt::ep
