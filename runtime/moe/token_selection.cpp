// Token selection: top-k (with groups), capacity drops, expert choice (see token_selection.h).
#include "token_selection.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace moe::rt {

namespace {

// Marks in `allowed` the experts of the token's best `topk_group` groups, a group scored by the
// sum of its top two selection values (DeepSeek-V3; the top one when a group has one expert).
void allowed_groups(const MoeConfig& c, const double* sel, std::vector<uint8_t>& allowed) {
  const int64_t E = c.num_experts, G = c.n_group, size = E / G;
  std::fill(allowed.begin(), allowed.end(), uint8_t{1});
  if (G <= 1) return;
  std::vector<double> group_score(G);
  for (int64_t g = 0; g < G; ++g) {
    double first = -std::numeric_limits<double>::infinity(), second = first;
    for (int64_t i = 0; i < size; ++i) {
      const double v = sel[g * size + i];
      if (v > first) second = first, first = v;
      else if (v > second) second = v;
    }
    group_score[g] = size >= 2 ? first + second : first;
  }
  std::vector<int64_t> order(G);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return group_score[a] > group_score[b]; });
  std::fill(allowed.begin(), allowed.end(), uint8_t{0});
  for (int64_t i = 0; i < c.topk_group; ++i)
    for (int64_t j = 0; j < size; ++j) allowed[order[i] * size + j] = 1;
}

template <typename T>
void select_token_choice(const MoeConfig& c, const T* scores, const float* bias, int64_t tokens,
                         bool apply_capacity, Assignments& out, std::vector<T>& weight) {
  const int64_t E = c.num_experts, k = c.top_k, A = tokens * k;
  out.top_k = k;
  out.token.resize(A);
  out.expert.resize(A);
  weight.resize(A);
  std::vector<double> sel(E);
  std::vector<uint8_t> allowed(E), taken(E);
  for (int64_t t = 0; t < tokens; ++t) {
    const T* s = scores + t * E;
    for (int64_t e = 0; e < E; ++e) sel[e] = static_cast<double>(s[e]) + static_cast<double>(bias[e]);
    allowed_groups(c, sel.data(), allowed);
    std::fill(taken.begin(), taken.end(), uint8_t{0});
    T sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e)
        if (allowed[e] && !taken[e] && (best < 0 || sel[e] > sel[best])) best = e;
      taken[best] = 1;
      out.token[t * k + j] = static_cast<int32_t>(t);
      out.expert[t * k + j] = static_cast<int32_t>(best);
      weight[t * k + j] = s[best];
      sum += s[best];
    }
    const T scale = static_cast<T>(c.routed_scaling_factor) / (c.norm_topk_prob ? sum : T(1));
    for (int64_t j = 0; j < k; ++j) weight[t * k + j] *= scale;
  }

  out.route = out.expert;
  out.counts.assign(E, 0);
  for (int64_t a = 0; a < A; ++a) ++out.counts[out.expert[a]];
  out.capacity = 0;
  out.dropped.assign(E, 0);
  if (apply_capacity && !c.dropless()) apply_capacity_limit(c, weight.data(), c.capacity(tokens), out);
  out.tokens_without_expert = count_tokens_without_expert(out);
}

template <typename T>
void select_expert_choice(const MoeConfig& c, const T* scores, const float* bias, int64_t tokens,
                          Assignments& out, std::vector<T>& weight) {
  const int64_t E = c.num_experts, C = c.capacity(tokens), A = E * C;
  out.top_k = 0;
  out.capacity = C;
  out.token.resize(A);
  out.expert.resize(A);
  weight.resize(A);
  std::vector<int32_t> order(tokens);
  for (int64_t e = 0; e < E; ++e) {
    // A per-expert bias shifts the whole column: it cannot change which tokens the expert takes.
    (void)bias;
    std::iota(order.begin(), order.end(), 0);
    auto score = [&](int32_t t) { return scores[t * E + e]; };
    std::partial_sort(order.begin(), order.begin() + C, order.end(), [&](int32_t x, int32_t y) {
      return score(x) > score(y) || (score(x) == score(y) && x < y);
    });
    // The chosen tokens in token order: every dispatcher then delivers an expert's rows of one
    // source in token order (deterministic arithmetic sums them in that order).
    std::sort(order.begin(), order.begin() + C);
    for (int64_t i = 0; i < C; ++i) {
      const int32_t t = order[i];
      out.token[e * C + i] = t;
      out.expert[e * C + i] = static_cast<int32_t>(e);
      weight[e * C + i] = score(t) * static_cast<T>(c.routed_scaling_factor);
    }
  }
  out.route = out.expert;
  out.counts.assign(E, C);
  out.dropped.assign(E, 0);
  out.tokens_without_expert = count_tokens_without_expert(out);
}

}  // namespace

template <typename T>
void apply_capacity_limit(const MoeConfig& c, const T* weight, int64_t capacity, Assignments& out) {
  const int64_t E = out.num_experts, A = out.size(), C = capacity;
  out.capacity = C;
  if (c.drop_policy == DropPolicy::position) {
    std::vector<int64_t> used(E, 0);
    for (int64_t a = 0; a < A; ++a)  // a = t·k + j: token order
      if (out.route[a] >= 0 && used[out.route[a]]++ >= C) out.route[a] = -1;
  } else {
    std::vector<std::vector<int32_t>> per_expert(E);
    for (int64_t a = 0; a < A; ++a)
      if (out.route[a] >= 0) per_expert[out.route[a]].push_back(static_cast<int32_t>(a));
    for (auto& list : per_expert) {
      if (static_cast<int64_t>(list.size()) <= C) continue;
      std::stable_sort(list.begin(), list.end(), [&](int32_t x, int32_t y) { return weight[x] > weight[y]; });
      for (size_t i = C; i < list.size(); ++i) out.route[list[i]] = -1;
    }
  }
  out.dropped.assign(E, 0);
  for (int64_t a = 0; a < A; ++a)
    if (out.route[a] < 0) ++out.dropped[out.expert[a]];
  out.tokens_without_expert = count_tokens_without_expert(out);
}

int64_t count_tokens_without_expert(const Assignments& asg) {
  std::vector<uint8_t> covered(asg.num_tokens, 0);
  for (int64_t a = 0; a < asg.size(); ++a)
    if (asg.route[a] >= 0) covered[asg.token[a]] = 1;
  return asg.num_tokens - std::count(covered.begin(), covered.end(), uint8_t{1});
}

template <typename T>
void select_tokens(const MoeConfig& config, const T* scores, const float* bias, int64_t tokens,
                   bool apply_capacity, Assignments& out, std::vector<T>& weight) {
  out.num_tokens = tokens;
  out.num_experts = config.num_experts;
  if (config.type == RoutingType::expert_choice)
    select_expert_choice(config, scores, bias, tokens, out, weight);
  else
    select_token_choice(config, scores, bias, tokens, apply_capacity, out, weight);
}

template <typename T>
void select_tokens_backward(const MoeConfig& config, const T* scores, const Assignments& asg, const T* dweight,
                            T* dscores) {
  const int64_t E = config.num_experts;
  const T scale = static_cast<T>(config.routed_scaling_factor);
  if (asg.top_k == 0 || !config.norm_topk_prob) {  // w = scale · s
    for (int64_t a = 0; a < asg.size(); ++a) dscores[asg.token[a] * E + asg.expert[a]] += scale * dweight[a];
    return;
  }
  // w_j = scale · s_j / Z, Z = Σ_i s_i over the token's k choices:
  //   dL/ds_j = scale · (dw_j − Σ_i dw_i · s_i / Z) / Z
  const int64_t k = asg.top_k;
  for (int64_t t = 0; t < asg.num_tokens; ++t) {
    T z = 0, dot = 0;
    for (int64_t j = 0; j < k; ++j) {
      const T s = scores[t * E + asg.expert[t * k + j]];
      z += s;
      dot += dweight[t * k + j] * s;
    }
    for (int64_t j = 0; j < k; ++j)
      dscores[t * E + asg.expert[t * k + j]] += scale * (dweight[t * k + j] - dot / z) / z;
  }
}

template void apply_capacity_limit<float>(const MoeConfig&, const float*, int64_t, Assignments&);
template void apply_capacity_limit<double>(const MoeConfig&, const double*, int64_t, Assignments&);
template void select_tokens<float>(const MoeConfig&, const float*, const float*, int64_t, bool, Assignments&,
                                   std::vector<float>&);
template void select_tokens<double>(const MoeConfig&, const double*, const float*, int64_t, bool, Assignments&,
                                    std::vector<double>&);
template void select_tokens_backward<float>(const MoeConfig&, const float*, const Assignments&, const float*, float*);
template void select_tokens_backward<double>(const MoeConfig&, const double*, const Assignments&, const double*,
                                             double*);

}  // namespace moe::rt
