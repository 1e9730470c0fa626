// The token-moving ops against plain references (std::count, std::stable_sort, naive loops).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "routing_ops.h"

namespace moe::rt {
namespace {

std::vector<int32_t> random_experts(int64_t n, int64_t E, uint64_t seed, bool with_drops) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(with_drops ? -1 : 0, static_cast<int>(E) - 1);
  std::vector<int32_t> v(n);
  for (auto& e : v) e = pick(rng);
  return v;
}

std::vector<double> random_rows(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

TEST(RoutingOps, HistogramCountsEachExpertAndSkipsDropped) {
  const int64_t E = 7;
  const auto experts = random_experts(1000, E, 1, true);
  std::vector<int64_t> counts(E);
  expert_histogram(experts.data(), experts.size(), E, counts.data());
  for (int64_t e = 0; e < E; ++e) EXPECT_EQ(counts[e], std::count(experts.begin(), experts.end(), e)) << e;
  const int64_t dropped = std::count(experts.begin(), experts.end(), -1);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}) + dropped, 1000);
}

TEST(RoutingOps, HistogramOfNothingIsZero) {
  std::vector<int64_t> counts(3, 99);
  expert_histogram(nullptr, 0, 3, counts.data());
  EXPECT_EQ(counts, (std::vector<int64_t>{0, 0, 0}));
}

TEST(RoutingOps, ExclusiveScanMatchesPartialSum) {
  const std::vector<int64_t> counts{3, 0, 5, 1, 0, 7};
  std::vector<int64_t> offsets(counts.size() + 1), expected(counts.size() + 1, 0);
  exclusive_scan(counts.data(), counts.size(), offsets.data());
  std::partial_sum(counts.begin(), counts.end(), expected.begin() + 1);
  EXPECT_EQ(offsets, expected);
}

TEST(RoutingOps, SortByExpertIsAStableSortOfKeptAssignments) {
  const int64_t E = 5, A = 300;
  const auto experts = random_experts(A, E, 2, true);
  std::vector<int64_t> counts(E), offsets(E + 1), cursor(E);
  expert_histogram(experts.data(), A, E, counts.data());
  exclusive_scan(counts.data(), E, offsets.data());
  const int64_t R = offsets[E];
  std::vector<int32_t> row_assignment(R), assignment_row(A);
  sort_by_expert(experts.data(), A, offsets.data(), E, cursor.data(), row_assignment.data(), assignment_row.data());

  std::vector<int32_t> reference;
  for (int32_t a = 0; a < A; ++a)
    if (experts[a] >= 0) reference.push_back(a);
  std::stable_sort(reference.begin(), reference.end(), [&](int32_t x, int32_t y) { return experts[x] < experts[y]; });
  EXPECT_EQ(row_assignment, reference);
  for (int64_t a = 0; a < A; ++a) {
    if (experts[a] < 0) {
      EXPECT_EQ(assignment_row[a], -1);
    } else {
      ASSERT_GE(assignment_row[a], 0);
      EXPECT_EQ(row_assignment[assignment_row[a]], a);
      EXPECT_GE(assignment_row[a], offsets[experts[a]]);
      EXPECT_LT(assignment_row[a], offsets[experts[a] + 1]);
    }
  }
}

TEST(RoutingOps, GatherAndScatterRowsMatchNaiveLoops) {
  const int64_t tokens = 11, d = 6, R = 17;
  const auto src = random_rows(tokens * d, 3);
  const auto rows = random_rows(R * d, 4);
  const auto w = random_rows(R, 5);
  std::vector<int32_t> index(R);
  std::mt19937_64 rng(6);
  for (auto& i : index) i = static_cast<int32_t>(rng() % tokens);

  std::vector<double> gathered(R * d), wgathered(R * d), dots(R);
  gather_rows(gathered.data(), src.data(), index.data(), R, d);
  weighted_gather_rows(wgathered.data(), src.data(), index.data(), w.data(), R, d);
  row_dots(dots.data(), rows.data(), src.data(), index.data(), R, d);
  std::vector<double> scattered(tokens * d, 1.0), wscattered(tokens * d, 1.0);
  scatter_add_rows(scattered.data(), rows.data(), index.data(), R, d);
  weighted_scatter_add_rows(wscattered.data(), rows.data(), index.data(), w.data(), R, d);

  std::vector<double> ref_scatter(tokens * d, 1.0), ref_wscatter(tokens * d, 1.0);
  for (int64_t r = 0; r < R; ++r) {
    double dot = 0;
    for (int64_t i = 0; i < d; ++i) {
      EXPECT_EQ(gathered[r * d + i], src[index[r] * d + i]);
      EXPECT_DOUBLE_EQ(wgathered[r * d + i], w[r] * src[index[r] * d + i]);
      dot += rows[r * d + i] * src[index[r] * d + i];
      ref_scatter[index[r] * d + i] += rows[r * d + i];
      ref_wscatter[index[r] * d + i] += w[r] * rows[r * d + i];
    }
    EXPECT_NEAR(dots[r], dot, 1e-12);
  }
  for (int64_t i = 0; i < tokens * d; ++i) {
    EXPECT_NEAR(scattered[i], ref_scatter[i], 1e-12);
    EXPECT_NEAR(wscattered[i], ref_wscatter[i], 1e-12);
  }
}

// scatter_add is the adjoint of gather: <gather(x), y> = <x, scatter(y)> — why it is the backward.
TEST(RoutingOps, ScatterAddIsTheAdjointOfGather) {
  const int64_t tokens = 9, d = 4, R = 14;
  const auto x = random_rows(tokens * d, 7);
  const auto y = random_rows(R * d, 8);
  std::vector<int32_t> index(R);
  std::mt19937_64 rng(9);
  for (auto& i : index) i = static_cast<int32_t>(rng() % tokens);
  std::vector<double> gx(R * d), sy(tokens * d, 0.0);
  gather_rows(gx.data(), x.data(), index.data(), R, d);
  scatter_add_rows(sy.data(), y.data(), index.data(), R, d);
  const double lhs = std::inner_product(gx.begin(), gx.end(), y.begin(), 0.0);
  const double rhs = std::inner_product(x.begin(), x.end(), sy.begin(), 0.0);
  EXPECT_NEAR(lhs, rhs, 1e-10);
}

TEST(RoutingOps, FloatInstantiationsAgreeWithDouble) {
  const int64_t tokens = 5, d = 3, R = 6;
  const std::vector<int32_t> index{4, 0, 0, 2, 3, 4};
  std::vector<float> src(tokens * d), out(R * d);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f;
  gather_rows(out.data(), src.data(), index.data(), R, d);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < d; ++i) EXPECT_EQ(out[r * d + i], src[index[r] * d + i]);
}

}  // namespace
}  // namespace moe::rt
