#include "rank_layout.h"

#include <algorithm>
#include <array>
#include <set>

#include <gtest/gtest.h>

#include "error.h"
#include "expert_placement.h"

using namespace moe;

// The seed's example: 512 GPUs = 4 DP × 8 TP × 4 PP × 4 EP, 8 GPUs per node.
class SeedLayout : public ::testing::Test {
 protected:
  RankLayout l = make_rank_layout(/*tp=*/8, /*ep=*/4, /*dp=*/4, /*pp=*/4, /*gpus_per_node=*/8);
};

TEST_F(SeedLayout, CoordinatesFollowTheContract) {
  ASSERT_EQ(l.world_size(), 512);
  EXPECT_EQ(l.nodes(), 64);
  for (const auto& c : l.ranks) {
    EXPECT_EQ(c.rank, c.tp + 8 * (c.ep + 4 * (c.dp + 4 * c.pp)));
    EXPECT_EQ(l.rank_of(c.tp, c.ep, c.dp, c.pp), c.rank);
    EXPECT_EQ(c.node, c.rank / 8);
  }
  const RankCoord& r = l.ranks[300];  // 300 = 4 + 8·(1 + 4·(1 + 4·2))
  EXPECT_EQ(r.tp, 4);
  EXPECT_EQ(r.ep, 1);
  EXPECT_EQ(r.dp, 1);
  EXPECT_EQ(r.pp, 2);
  EXPECT_EQ(r.node, 37);
  EXPECT_EQ(r.local_rank, 4);
}

TEST_F(SeedLayout, GroupsPartitionTheWorld) {
  auto check = [&](const std::vector<RankGroup>& groups, size_t count, size_t size) {
    EXPECT_EQ(groups.size(), count);
    std::set<int64_t> seen;
    for (const auto& g : groups) {
      EXPECT_EQ(g.size(), size);
      EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
      seen.insert(g.begin(), g.end());
    }
    EXPECT_EQ(seen.size(), 512u);
  };
  check(l.tp_groups, 64, 8);
  check(l.ep_groups, 128, 4);
  check(l.dp_groups, 128, 4);
  check(l.pp_groups, 128, 4);
  check(l.expert_dp_groups, 128, 4);
  check(l.dense_dp_groups, 32, 16);
}

TEST_F(SeedLayout, GroupsHoldTheRightRanks) {
  // TP group of rank 300: its node's 8 consecutive ranks.
  EXPECT_EQ(l.group_of(l.tp_groups, 300), (RankGroup{296, 297, 298, 299, 300, 301, 302, 303}));
  // EP group: stride TP.
  EXPECT_EQ(l.group_of(l.ep_groups, 300), (RankGroup{292, 300, 308, 316}));
  // DP group: stride TP·EP = 32.
  EXPECT_EQ(l.group_of(l.dp_groups, 300), (RankGroup{268, 300, 332, 364}));
  // PP group: stride TP·EP·DP = 128.
  EXPECT_EQ(l.group_of(l.pp_groups, 300), (RankGroup{44, 172, 300, 428}));
  // Dense weights are replicated over ep × dp: same tp and pp, 16 ranks.
  const RankGroup& dense = l.group_of(l.dense_dp_groups, 300);
  EXPECT_EQ(dense.size(), 16u);
  for (int64_t r : dense) {
    EXPECT_EQ(l.ranks[r].tp, 4);
    EXPECT_EQ(l.ranks[r].pp, 2);
  }
}

// Every shape with tp, ep, dp, pp in 1..4 and 1, 3 or 8 GPUs per node, 768 in all (issue 15: the
// groups of 4-D parallelism come from here): each group kind is exactly the set of ranks that agree
// on the coordinates the contract says it shares, from rank = tp + TP·(ep + EP·(dp + DP·pp)).
TEST(RankLayout, GroupsMatchTheContractForEveryShape) {
  for (int64_t tp = 1; tp <= 4; ++tp)
    for (int64_t ep = 1; ep <= 4; ++ep)
      for (int64_t dp = 1; dp <= 4; ++dp)
        for (int64_t pp = 1; pp <= 4; ++pp)
          for (int64_t gpn : {1, 3, 8}) {
            const RankLayout l = make_rank_layout(tp, ep, dp, pp, gpn);
            const int64_t world = tp * ep * dp * pp;
            ASSERT_EQ(l.world_size(), world);
            auto coord = [&](int64_t r) {
              return std::array<int64_t, 4>{r % tp, (r / tp) % ep, (r / (tp * ep)) % dp, r / (tp * ep * dp)};
            };
            // The ranks sharing the coordinates marked in `same` with rank r, ascending.
            auto expected = [&](int64_t r, std::array<bool, 4> same) {
              RankGroup g;
              for (int64_t q = 0; q < world; ++q) {
                bool ok = true;
                for (int k = 0; k < 4; ++k) ok = ok && (!same[k] || coord(q)[k] == coord(r)[k]);
                if (ok) g.push_back(q);
              }
              return g;
            };
            for (int64_t r = 0; r < world; ++r) {
              const auto c = coord(r);
              const RankCoord& rc = l.ranks[r];
              ASSERT_EQ((std::array<int64_t, 4>{rc.tp, rc.ep, rc.dp, rc.pp}), c) << r;
              ASSERT_EQ(rc.node, r / gpn);
              ASSERT_EQ(rc.local_rank, r % gpn);
              //                        tp     ep     dp     pp   : coordinates shared
              ASSERT_EQ(l.group_of(l.tp_groups, r), expected(r, {false, true, true, true}));
              ASSERT_EQ(l.group_of(l.ep_groups, r), expected(r, {true, false, true, true}));
              ASSERT_EQ(l.group_of(l.dp_groups, r), expected(r, {true, true, false, true}));
              ASSERT_EQ(l.group_of(l.pp_groups, r), expected(r, {true, true, true, false}));
              ASSERT_EQ(l.group_of(l.expert_dp_groups, r), expected(r, {true, true, false, true}));
              ASSERT_EQ(l.group_of(l.dense_dp_groups, r), expected(r, {true, false, false, true}));
            }
            std::vector<int64_t> first_nodes;
            for (int64_t q : l.ep_groups.at(0)) first_nodes.push_back(l.ranks[q].node - l.ranks[l.ep_groups[0][0]].node);
            ParallelSpec ps;
            ps.tp = tp, ps.ep = ep, ps.dp = dp, ps.pp = pp, ps.gpus_per_node = gpn;
            ASSERT_EQ(first_ep_group_nodes(ps), first_nodes);
            for (const auto* kind : {&l.tp_groups, &l.ep_groups, &l.dp_groups, &l.pp_groups, &l.expert_dp_groups,
                                     &l.dense_dp_groups}) {
              int64_t members = 0;
              for (const auto& g : *kind) members += static_cast<int64_t>(g.size());
              ASSERT_EQ(members, world) << "a partition: every rank in exactly one group of each kind";
            }
          }
}

TEST(RankLayout, RefusesNonPositiveSizes) {
  EXPECT_THROW(make_rank_layout(0, 1, 1, 1, 1), moe::Error);
}

TEST(ExpertPlacement, UniformPutsContiguousBlocksOnRanks) {
  PlacementInput in;
  in.num_experts = 8;
  in.ep = 4;
  in.layers = 3;
  Placement p = place_experts("uniform", in);
  ASSERT_EQ(p.size(), 3u);
  for (int64_t e = 0; e < 8; ++e) {
    ASSERT_EQ(p[1].log_to_phy[e].size(), 1u);
    EXPECT_EQ(p[1].rank_of_slot(p[1].log_to_phy[e][0]), e / 2);
    EXPECT_EQ(p[1].phy_to_log[p[1].log_to_phy[e][0]], e);
  }
  in.ep = 3;
  EXPECT_THROW(place_experts("uniform", in), moe::Error);
  EXPECT_THROW(place_experts("nonsense", in), moe::Error);
}
