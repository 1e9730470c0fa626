#include "rank_layout.h"

#include <algorithm>
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
