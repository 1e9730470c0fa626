// model.moe.router_init "clustered": the planted groups really are co-selected, the groups differ
// in popularity, every other parameter keeps its "normal" draw, and the default plants nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "model.h"
#include "router_init.h"
#include "tiny_spec.h"

using namespace moe;
using namespace moe::rt;

namespace {

constexpr int64_t kExperts = 8, kDim = 128, kTopK = 2;

// Over random hidden states: the share of tokens whose top-2 experts share a group, and each
// expert's share of the top-2 picks.
struct Selection {
  double same_group = 0;
  std::vector<double> share;
};

Selection select_top2(const std::vector<float>& w, const std::vector<int64_t>& group) {
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal(0.0, 1.0);
  constexpr int tokens = 4000;
  Selection out;
  out.share.assign(kExperts, 0.0);
  std::vector<double> h(kDim), logit(kExperts);
  std::vector<int64_t> order(kExperts);
  for (int t = 0; t < tokens; ++t) {
    for (double& v : h) v = normal(rng);
    for (int64_t e = 0; e < kExperts; ++e)
      logit[e] = std::inner_product(h.begin(), h.end(), w.begin() + e * kDim, 0.0);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 2, order.end(),
                      [&](int64_t a, int64_t b) { return logit[a] > logit[b]; });
    out.same_group += group[order[0]] == group[order[1]];
    out.share[order[0]] += 0.5 / tokens;
    out.share[order[1]] += 0.5 / tokens;
  }
  out.same_group /= tokens;
  return out;
}

}  // namespace

TEST(RouterInit, ClusteredGroupsAreCoSelectedAndSkewed) {
  const std::vector<int64_t> group = clustered_router_groups(kExperts, kTopK, 5);
  std::map<int64_t, int> sizes;
  for (int64_t g : group) ++sizes[g];
  ASSERT_EQ(sizes.size(), 4u);
  for (auto [g, n] : sizes) EXPECT_EQ(n, kTopK) << "group " << g;

  std::vector<float> w(kExperts * kDim);
  init_clustered_router(w, kExperts, kDim, kTopK, 0.02, 5);
  const Selection s = select_top2(w, group);
  // Chance (a random pair) is 1/7: the planted groups must dominate.
  EXPECT_GT(s.same_group, 0.8);
  // Group 0 is drawn 1.75× as strong as group 3, so its experts are picked more often.
  double first = 0, last = 0;
  for (int64_t e = 0; e < kExperts; ++e) {
    if (group[e] == 0) first += s.share[e];
    if (group[e] == 3) last += s.share[e];
  }
  EXPECT_GT(first, 1.5 * last);

  std::vector<float> again(w.size());
  init_clustered_router(again, kExperts, kDim, kTopK, 0.02, 5);
  EXPECT_EQ(again, w);
}

TEST(RouterInit, NormalRouterPlantsNoGroups) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(kExperts * kDim);
  for (float& v : w) v = normal(rng);
  const Selection s = select_top2(w, clustered_router_groups(kExperts, kTopK, 5));
  EXPECT_LT(s.same_group, 0.35);
}

TEST(RouterInit, OnlyTheRoutersChangeInTheModel) {
  JobSpec spec = test::tiny_spec();
  MixtralModel normal(spec);
  spec.model.moe.router_init = "clustered";
  MixtralModel clustered(spec);
  auto a = normal.named_params(), b = clustered.named_params();
  ASSERT_EQ(a.size(), b.size());
  int routers = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool router = a[i]->name.find("block_sparse_moe.gate.weight") != std::string::npos;
    routers += router;
    if (router)
      EXPECT_NE(a[i]->value, b[i]->value) << a[i]->name;
    else
      EXPECT_EQ(a[i]->value, b[i]->value) << a[i]->name;
  }
  EXPECT_EQ(routers, spec.model.n_layers);
}

TEST(RouterInit, RefusesAWrongSize) {
  std::vector<float> w(10);
  EXPECT_THROW(init_clustered_router(w, kExperts, kDim, kTopK, 0.02, 1), std::exception);
}
