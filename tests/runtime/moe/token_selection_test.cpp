// Token selection on fixed score tables, checked against routings worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "error.h"
#include "token_selection.h"

namespace moe::rt {
namespace {

MoeConfig config(int64_t E, int64_t k, double cf = 0.0) {
  MoeConfig c;
  c.d_model = 4;
  c.num_experts = E;
  c.top_k = k;
  c.d_expert = 4;
  c.capacity_factor = cf;
  return c;
}

TEST(TokenSelection, CapacityRounding) {
  MoeConfig c = config(4, 2, 1.25);
  EXPECT_EQ(c.capacity(8), 5);     // 1.25·8·2/4 = 5 exactly: no spurious round-up
  EXPECT_EQ(c.capacity(9), 6);     // 5.625 → 6
  EXPECT_EQ(c.capacity(1), 1);     // 0.625 → 1
  c.capacity_factor = 0.01;
  EXPECT_EQ(c.capacity(3), 1);     // at least one
  c.type = RoutingType::expert_choice;
  c.capacity_factor = 10.0;
  EXPECT_EQ(c.capacity(3), 3);     // expert choice: at most T
  c.capacity_factor = 0.0;
  EXPECT_EQ(c.capacity(8), 4);     // factor 0 → 1 in expert choice: 8·2/4
}

TEST(TokenSelection, TopKPicksLargestAndRenormalises) {
  MoeConfig c = config(4, 2);
  c.routed_scaling_factor = 2.5;
  const std::vector<double> scores{0.1, 0.4, 0.2, 0.3,   //
                                   0.5, 0.1, 0.1, 0.3};  // tie 0.1/0.1 irrelevant
  const std::vector<float> bias(4, 0.0f);
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), 2, true, a, w);
  ASSERT_EQ(a.size(), 4);
  EXPECT_EQ(a.expert, (std::vector<int32_t>{1, 3, 0, 3}));
  EXPECT_EQ(a.token, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_NEAR(w[0], 2.5 * 0.4 / 0.7, 1e-12);
  EXPECT_NEAR(w[1], 2.5 * 0.3 / 0.7, 1e-12);
  EXPECT_NEAR(w[2], 2.5 * 0.5 / 0.8, 1e-12);
  EXPECT_EQ(a.counts, (std::vector<int64_t>{1, 1, 0, 2}));
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{0, 0, 0, 0}));
  c.norm_topk_prob = false;
  select_tokens(c, scores.data(), bias.data(), 2, true, a, w);
  EXPECT_NEAR(w[0], 2.5 * 0.4, 1e-12);
}

TEST(TokenSelection, BiasChangesSelectionButNotGateWeights) {
  MoeConfig c = config(3, 1);
  c.norm_topk_prob = false;
  const std::vector<double> scores{0.5, 0.3, 0.2};
  const std::vector<float> bias{0.0f, 0.25f, 0.0f};  // 0.3 + 0.25 > 0.5
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), 1, true, a, w);
  EXPECT_EQ(a.expert[0], 1);
  EXPECT_DOUBLE_EQ(w[0], 0.3);  // the unbiased score
}

TEST(TokenSelection, GroupLimitedRoutingStaysInBestGroups) {
  MoeConfig c = config(6, 2);
  c.n_group = 3;
  c.topk_group = 1;
  // groups {0,1} {2,3} {4,5}: top-2 sums .50+.05=.55, .30+.29=.59, .00+.00=0 → group 1 wins,
  // although expert 0 has the single best score.
  const std::vector<double> scores{0.50, 0.05, 0.30, 0.29, 0.0, 0.0};
  const std::vector<float> bias(6, 0.0f);
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), 1, true, a, w);
  EXPECT_EQ(a.expert, (std::vector<int32_t>{2, 3}));
  c.topk_group = 2;  // groups 1 and 0: experts 0 and 2
  select_tokens(c, scores.data(), bias.data(), 1, true, a, w);
  EXPECT_EQ(a.expert, (std::vector<int32_t>{0, 2}));
}

// Tokens 0..4 prefer expert 0, token 5 expert 1; k = 1, C = ceil(1·6·1/2) = 3.
TEST(TokenSelection, CapacityPositionDropsLaterTokens) {
  MoeConfig c = config(2, 1, 1.0);
  c.norm_topk_prob = false;
  const std::vector<double> scores{0.60, 0.40, 0.90, 0.10, 0.70, 0.30,
                                   0.80, 0.20, 0.55, 0.45, 0.20, 0.80};
  const std::vector<float> bias(2, 0.0f);
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), 6, true, a, w);
  EXPECT_EQ(a.capacity, 3);
  EXPECT_EQ(a.route, (std::vector<int32_t>{0, 0, 0, -1, -1, 1}));
  EXPECT_EQ(a.counts, (std::vector<int64_t>{5, 1}));
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(a.tokens_without_expert, 2);
  select_tokens(c, scores.data(), bias.data(), 6, false, a, w);  // force_dropless
  EXPECT_EQ(a.route, a.expert);
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{0, 0}));
}

// The same routing under `probability`: expert 0 keeps its three largest gates .9, .8, .7
// (tokens 1, 3, 2) and drops tokens 0 (.6) and 4 (.55).
TEST(TokenSelection, CapacityProbabilityDropsLowestGates) {
  MoeConfig c = config(2, 1, 1.0);
  c.norm_topk_prob = false;
  c.drop_policy = DropPolicy::probability;
  const std::vector<double> scores{0.60, 0.40, 0.90, 0.10, 0.70, 0.30,
                                   0.80, 0.20, 0.55, 0.45, 0.20, 0.80};
  const std::vector<float> bias(2, 0.0f);
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), 6, true, a, w);
  EXPECT_EQ(a.route, (std::vector<int32_t>{-1, 0, 0, 0, -1, 1}));
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{2, 0}));
}

// Top-2 with drops: T = 4, E = 3, cf = 0.75 → C = ceil(0.75·4·2/3) = 2.
//   token 0: 0 (.5) 1 (.3) | token 1: 0 (.6) 2 (.3) | token 2: 0 (.7) 1 (.2) | token 3: 1 (.5) 0 (.4)
// Expert 0 is chosen by all four tokens; position keeps tokens 0, 1; probability keeps the two
// largest renormalised gates: token 2 (.7/.9 = .778) and token 1 (.6/.9 = .667).
TEST(TokenSelection, CapacityTopTwoBothPolicies) {
  MoeConfig c = config(3, 2, 0.75);
  const std::vector<double> scores{0.5, 0.3, 0.2,  //
                                   0.6, 0.1, 0.3,  //
                                   0.7, 0.2, 0.1,  //
                                   0.4, 0.5, 0.1};
  const std::vector<float> bias(3, 0.0f);
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), 4, true, a, w);
  EXPECT_EQ(a.expert, (std::vector<int32_t>{0, 1, 0, 2, 0, 1, 1, 0}));
  // expert 0 keeps tokens 0, 1; expert 1 (tokens 0, 2, 3) drops token 3, which loses both.
  EXPECT_EQ(a.route, (std::vector<int32_t>{0, 1, 0, 2, -1, 1, -1, -1}));
  EXPECT_EQ(a.counts, (std::vector<int64_t>{4, 3, 1}));
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(a.tokens_without_expert, 1);
  c.drop_policy = DropPolicy::probability;
  select_tokens(c, scores.data(), bias.data(), 4, true, a, w);
  // expert 0 gates: t0 .625, t1 .667, t2 .778, t3 .444 → keep t2, t1
  // expert 1 gates: t0 .375, t2 .222, t3 .556 → keep t3, t0
  EXPECT_EQ(a.route, (std::vector<int32_t>{-1, 1, 0, 2, 0, -1, 1, -1}));
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{2, 1, 0}));
}

// The capacity step on its own (what a multi-rank dispatcher calls with a global decision):
// five tokens all on expert 1, capacity 2 → position keeps tokens 0, 1; probability keeps the
// two largest weights (tokens 3 and 1).
TEST(TokenSelection, CapacityStepAlone) {
  MoeConfig c = config(2, 1, 1.0);
  Assignments a;
  a.num_tokens = 5;
  a.num_experts = 2;
  a.top_k = 1;
  a.token = {0, 1, 2, 3, 4};
  a.expert = {1, 1, 1, 1, 1};
  a.route = a.expert;
  const std::vector<double> w{0.1, 0.8, 0.3, 0.9, 0.2};
  apply_capacity_limit(c, w.data(), 2, a);
  EXPECT_EQ(a.route, (std::vector<int32_t>{1, 1, -1, -1, -1}));
  EXPECT_EQ(a.dropped, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(a.tokens_without_expert, 3);
  c.drop_policy = DropPolicy::probability;
  a.route = a.expert;
  apply_capacity_limit(c, w.data(), 2, a);
  EXPECT_EQ(a.route, (std::vector<int32_t>{-1, 1, -1, 1, -1}));
}

TEST(TokenSelection, ExpertChoiceGivesEveryExpertExactlyC) {
  MoeConfig c = config(4, 2, 1.0);
  c.type = RoutingType::expert_choice;
  const int64_t T = 13, E = 4;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> scores(T * E);
  for (auto& s : scores) s = u(rng);
  const std::vector<float> bias{0.5f, -0.5f, 0.0f, 1.0f};  // cannot change a column's order
  Assignments a;
  std::vector<double> w;
  select_tokens(c, scores.data(), bias.data(), T, true, a, w);
  const int64_t C = c.capacity(T);
  EXPECT_EQ(C, 7);  // ceil(13·2/4)
  ASSERT_EQ(a.size(), E * C);
  std::set<int32_t> covered;
  for (int64_t e = 0; e < E; ++e) {
    std::set<int32_t> taken;
    for (int64_t i = 0; i < C; ++i) {
      EXPECT_EQ(a.expert[e * C + i], e);
      taken.insert(a.token[e * C + i]);
      covered.insert(a.token[e * C + i]);
    }
    EXPECT_EQ(static_cast<int64_t>(taken.size()), C);  // C distinct tokens
    // they are the expert's top-C by score
    std::vector<double> column;
    for (int64_t t = 0; t < T; ++t) column.push_back(scores[t * E + e]);
    std::vector<double> sorted = column;
    std::sort(sorted.rbegin(), sorted.rend());
    for (int32_t t : taken) EXPECT_GE(column[t], sorted[C - 1]);
    EXPECT_EQ(a.counts[e], C);
  }
  EXPECT_EQ(a.tokens_without_expert, T - static_cast<int64_t>(covered.size()));
}

TEST(TokenSelection, ConfigRefusesWhatItCannotDo) {
  MoeConfig c = config(6, 2);
  c.n_group = 4;  // does not divide 6
  EXPECT_THROW(c.validate(), Error);
  c.n_group = 3;
  c.topk_group = 1;
  c.top_k = 3;  // one group of 2 cannot hold 3 experts
  EXPECT_THROW(c.validate(), Error);
  c = config(4, 5);
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace moe::rt
