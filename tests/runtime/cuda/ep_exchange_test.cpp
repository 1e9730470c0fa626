// The CUDA dispatcher's expert-parallel exchange plan (runtime/cuda/ep_exchange_plan.h), executed
// on the host between simulated ranks (label runtime): every row reaches the rank holding its
// expert, lands expert-major (peers in rank order, each peer's rows in its own order — the CPU
// AllToAllDispatcher's layout), and the reverse move brings it back to its exact source position.
// Ranks with no rows and experts nobody chose are included.
#include <gtest/gtest.h>

#include <random>

#include "ep_exchange_plan.h"
#include "error.h"

namespace moe::rt::cuda {
namespace {

struct Row {
  int src = -1;
  int64_t pos = -1;  // position in the source's local rows
  int64_t expert = -1;
  bool operator==(const Row& o) const { return src == o.src && pos == o.pos && expert == o.expert; }
};

void simulate(int P, int64_t E, std::mt19937_64& rng) {
  const int64_t L = E / P;
  // counts[p][e]: rank p's kept rows for global expert e (some ranks empty, some experts unused).
  std::vector<std::vector<int64_t>> counts(P, std::vector<int64_t>(E, 0));
  const int64_t unused = static_cast<int64_t>(rng() % E);
  for (int p = 0; p < P; ++p)
    for (int64_t e = 0; e < E; ++e)
      if (e != unused && !(P > 1 && p == 1)) counts[p][e] = static_cast<int64_t>(rng() % 7);
  // Local rows of each rank, sorted by global expert.
  std::vector<std::vector<Row>> local(P);
  for (int p = 0; p < P; ++p)
    for (int64_t e = 0; e < E; ++e)
      for (int64_t r = 0; r < counts[p][e]; ++r) local[p].push_back({p, static_cast<int64_t>(local[p].size()), e});
  // The counts exchange, then each rank's plan.
  std::vector<EpExchangePlan> plans;
  for (int p = 0; p < P; ++p) {
    std::vector<int64_t> received(P * L);
    for (int q = 0; q < P; ++q)
      for (int64_t i = 0; i < L; ++i) received[q * L + i] = counts[q][p * L + i];
    plans.push_back(plan_ep_exchange(p, P, E, counts[p], received));
  }
  // The rows exchange: peer-major receive buffers.
  std::vector<std::vector<Row>> peer_major(P);
  for (int p = 0; p < P; ++p) {
    int64_t off = 0;
    std::vector<int64_t> send_off(P);
    for (int q = 0; q < P; ++q) send_off[q] = off, off += plans[p].send_rows[q];
    ASSERT_EQ(off, static_cast<int64_t>(local[p].size()));
    for (int q = 0; q < P; ++q)  // what p sends q arrives in q's buffer in p's slot (ranks in order)
      for (int64_t r = 0; r < plans[p].send_rows[q]; ++r) peer_major[q].push_back(local[p][send_off[q] + r]);
  }
  for (int q = 0; q < P; ++q) {
    const EpExchangePlan& pl = plans[q];
    ASSERT_EQ(static_cast<int64_t>(peer_major[q].size()), pl.received_rows());
    std::vector<Row> expert_major(peer_major[q].size());
    for (size_t r = 0; r < expert_major.size(); ++r) expert_major[r] = peer_major[q][pl.expert_row_source[r]];
    // Expected: local expert i's rows, from peer 0, 1, … in their own order.
    std::vector<Row> expected;
    for (int64_t i = 0; i < L; ++i)
      for (int p = 0; p < P; ++p)
        for (const Row& row : local[p])
          if (row.expert == q * L + i) expected.push_back(row);
    EXPECT_EQ(expert_major, expected) << "rank " << q << " of " << P;
    for (int64_t i = 0; i < L; ++i)
      for (int64_t r = pl.expert_offsets[i]; r < pl.expert_offsets[i + 1]; ++r) EXPECT_EQ(expert_major[r].expert, q * L + i);
    // Reverse: back to peer-major through the inverse permutation.
    std::vector<Row> back(expert_major.size());
    for (size_t r = 0; r < back.size(); ++r) back[r] = expert_major[pl.peer_row_target[r]];
    EXPECT_EQ(back, peer_major[q]);
  }
  // The reverse exchange returns each rank's rows to their original positions.
  for (int p = 0; p < P; ++p) {
    std::vector<Row> returned;
    for (int q = 0; q < P; ++q) {
      int64_t off = 0;
      for (int s = 0; s < p; ++s) off += plans[q].recv_rows[s];
      for (int64_t r = 0; r < plans[q].recv_rows[p]; ++r) returned.push_back(peer_major[q][off + r]);
    }
    EXPECT_EQ(returned, local[p]) << "rank " << p;
  }
}

TEST(EpExchangePlan, RowsReachTheirExpertsAndComeBackBetweenSimulatedRanks) {
  std::mt19937_64 rng(std::random_device{}());
  for (int P : {1, 2, 3, 4, 8})
    for (int64_t E : {static_cast<int64_t>(P), static_cast<int64_t>(2 * P), static_cast<int64_t>(4 * P)})
      for (int trial = 0; trial < 3; ++trial) simulate(P, E, rng);
}

TEST(EpExchangePlan, ErrorsNameTheRank) {
  try {
    plan_ep_exchange(1, 3, 8, std::vector<int64_t>(8, 0), std::vector<int64_t>(6, 0));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 of 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(plan_ep_exchange(0, 2, 4, std::vector<int64_t>(3, 0), std::vector<int64_t>(4, 0)), Error);
  EXPECT_THROW(plan_ep_exchange(0, 2, 4, {1, -1, 0, 0}, std::vector<int64_t>(4, 0)), Error);
  EXPECT_THROW(plan_ep_exchange(2, 2, 4, std::vector<int64_t>(4, 0), std::vector<int64_t>(4, 0)), Error);
}

}  // namespace
}  // namespace moe::rt::cuda
