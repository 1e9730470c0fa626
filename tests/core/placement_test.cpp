// Expert-placement strategies (core/placement_strategies.h), the traffic evaluator
// (core/placement_traffic.h) and the placement part of the spec (docs/placement.md).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "cost_model.h"
#include "error.h"
#include "expert_placement.h"
#include "placement_traffic.h"
#include "spec_validation.h"

using namespace moe;

namespace {

const std::vector<std::string> kStrategies = {"replicate", "hierarchical", "data_driven"};

// Zipf-like load (expert of rank i gets 1000 / (i+1)^s), the ranks scattered over the indices.
std::vector<double> zipf(int64_t E, double s, int64_t salt = 0) {
  std::vector<double> w(static_cast<size_t>(E));
  for (int64_t i = 0; i < E; ++i) w[(i * 37 + 11 + salt) % E] = 1000.0 / std::pow(double(i + 1), s);
  return w;
}

// A deterministic pseudo-random co-selection matrix.
std::vector<double> random_coselection(int64_t E, uint64_t seed) {
  std::vector<double> c(static_cast<size_t>(E * E), 0.0);
  for (int64_t a = 0; a < E; ++a)
    for (int64_t b = a + 1; b < E; ++b) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      c[a * E + b] = c[b * E + a] = double((seed >> 33) % 100);
    }
  return c;
}

std::vector<int64_t> nodes_of(int64_t ep, int64_t nodes) {
  std::vector<int64_t> n(static_cast<size_t>(ep));
  for (int64_t m = 0; m < ep; ++m) n[m] = m / (ep / nodes);
  return n;
}

// max/mean of the members' load, a replica carrying load / replicas of its expert.
double member_imbalance(const LayerPlacement& lp, const std::vector<double>& w) {
  std::vector<double> load(static_cast<size_t>(lp.slots() / lp.slots_per_rank), 0.0);
  for (int64_t s = 0; s < lp.slots(); ++s) {
    const int64_t e = lp.phy_to_log[s];
    load[lp.rank_of_slot(s)] += w[e] / double(lp.log_to_phy[e].size());
  }
  return *std::max_element(load.begin(), load.end()) /
         (std::accumulate(load.begin(), load.end(), 0.0) / double(load.size()));
}

// Rows each member sends when every co-selected pair (a, b) sends its b copy from a's member:
// the second hop of a token whose first expert is a. Crossing nodes = co-selection cut by nodes.
std::vector<std::vector<int64_t>> sent_from_coselection(const LayerPlacement& lp, const std::vector<double>& c,
                                                        int64_t E) {
  std::vector<std::vector<int64_t>> sent(static_cast<size_t>(lp.slots() / lp.slots_per_rank),
                                         std::vector<int64_t>(E, 0));
  for (int64_t a = 0; a < E; ++a)
    for (int64_t b = 0; b < E; ++b) sent[lp.rank_of_slot(lp.log_to_phy[a][0])][b] += a == b ? 0 : int64_t(c[a * E + b]);
  return sent;
}

}  // namespace

TEST(PlacementStrategies, ValidForManyShapes) {
  int checked = 0, refused = 0;
  for (int64_t E : {8, 16, 64, 256})
    for (int64_t ep : {2, 4, 8, 64})
      for (int64_t nodes : {1, 2, 4}) {
        if (ep % nodes != 0) continue;
        const int64_t base = std::max<int64_t>(E / ep, 1);
        for (int64_t spr : {int64_t{0}, base + 1, base + 2}) {
          if (spr == 0 && E % ep != 0) continue;
          PlacementInput in;
          in.num_experts = E, in.ep = ep, in.slots_per_rank = spr, in.node_of_member = nodes_of(ep, nodes),
          in.layers = 3;
          in.load = {zipf(E, 1.0), zipf(E, 0.5, 3)};  // layer 2: no load (uniform)
          in.coselection = {random_coselection(E, uint64_t(E * ep + spr))};
          const int64_t per_rank = spr == 0 ? E / ep : spr;
          for (const std::string& s : kStrategies) {
            SCOPED_TRACE(s + " E=" + std::to_string(E) + " ep=" + std::to_string(ep) +
                         " nodes=" + std::to_string(nodes) + " spr=" + std::to_string(spr));
            if (s != "replicate" && per_rank > E / nodes) {  // a node's members would repeat its experts
              EXPECT_THROW(place_experts(s, in), Error);
              ++refused;
              continue;
            }
            const Placement p = place_experts(s, in);
            ASSERT_EQ(p.size(), 3u);
            for (const LayerPlacement& lp : p) {
              EXPECT_EQ(lp.slots(), ep * per_rank);
              EXPECT_EQ(lp, layer_from_map(lp.phy_to_log, E, ep));
            }
            ++checked;
          }
        }
      }
  EXPECT_GT(checked, 150);
  EXPECT_GT(refused, 5);
}

TEST(PlacementStrategies, DeterministicAndUniformWithoutInformation) {
  PlacementInput in;
  in.num_experts = 64, in.ep = 16, in.slots_per_rank = 5, in.node_of_member = nodes_of(16, 4), in.layers = 2;
  in.load = {zipf(64, 1.1)};
  in.coselection = {random_coselection(64, 7)};
  for (const std::string& s : kStrategies) {
    EXPECT_EQ(place_experts(s, in), place_experts(s, PlacementInput(in))) << s;
    // No load, no co-selection, no spare slot: the uniform placement (the runtime's fast path).
    PlacementInput bare;
    bare.num_experts = 64, bare.ep = 16, bare.node_of_member = nodes_of(16, 4), bare.layers = 2;
    EXPECT_TRUE(is_uniform(place_experts(s, bare), 64)) << s;
  }
}

TEST(PlacementStrategies, ImpossibleInputsThrowClearly) {
  PlacementInput in;
  in.num_experts = 8, in.ep = 4, in.slots_per_rank = 1;
  try {
    place_experts("replicate", in);
    ADD_FAILURE() << "4 slots accepted for 8 experts";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "placement.slots_per_rank: 1 × ep (4) slots cannot hold 8 experts");
  }
  in.slots_per_rank = 0, in.ep = 6, in.node_of_member = {0, 0, 1, 1, 2, 2};
  EXPECT_THROW(place_experts("data_driven", in), Error);  // ep does not divide E
  in.ep = 4, in.num_experts = 12, in.node_of_member = {0, 0, 0, 1};
  try {
    place_experts("hierarchical", in);
    ADD_FAILURE() << "uneven nodes accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "placement.hierarchical: the EP members are spread unevenly over the 2 nodes (a node holds 3, expected 2)");
  }
  in.node_of_member = {0, 1, 2, 3}, in.num_experts = 4 * 3 * 2 + 2;  // 26 experts over 4 nodes
  in.slots_per_rank = 7;
  EXPECT_THROW(place_experts("data_driven", in), Error);
  in.num_experts = 8, in.slots_per_rank = 0, in.load = {{1, 2, 3}};
  EXPECT_THROW(place_experts("replicate", in), Error);  // a load row of the wrong size
}

TEST(PlacementReplicate, ReachesBalanceOnSkewedLoads) {
  // The target, ≤ 1.05 max/mean member load, with one spare slot per rank (E/ep + 1).
  struct Case {
    int64_t E, ep, spr;
    double s;
  };
  for (const Case& c : {Case{8, 4, 3, 1.0}, Case{8, 4, 3, 1.2}, Case{8, 2, 5, 1.0}, Case{64, 8, 9, 1.0},
                        Case{64, 8, 9, 1.2}, Case{64, 16, 5, 1.0}, Case{256, 64, 5, 1.0}}) {
    PlacementInput in;
    in.num_experts = c.E, in.ep = c.ep, in.slots_per_rank = c.spr, in.load = {zipf(c.E, c.s)};
    const double replicated = member_imbalance(place_experts("replicate", in)[0], in.load[0]);
    in.slots_per_rank = 0;
    const double uniform = member_imbalance(place_experts("uniform", in)[0], in.load[0]);
    EXPECT_LE(replicated, 1.05) << c.E << " experts, ep " << c.ep << ", " << c.spr << " slots per rank, Zipf " << c.s;
    EXPECT_LT(replicated, uniform);
    std::printf("replicate E=%ld ep=%ld slots/rank=%ld zipf=%.1f: max/mean %.3f (uniform %.3f)\n", long(c.E),
                long(c.ep), long(c.spr), c.s, replicated, uniform);
  }
  // Without spare slots it is the balanced packing alone: still no worse than uniform.
  PlacementInput in;
  in.num_experts = 64, in.ep = 8, in.load = {zipf(64, 1.0)};
  EXPECT_LE(member_imbalance(place_experts("replicate", in)[0], in.load[0]),
            member_imbalance(place_experts("uniform", in)[0], in.load[0]));
}

TEST(PlacementReplicate, HottestExpertsGetTheSpareSlots) {
  PlacementInput in;
  in.num_experts = 4, in.ep = 2, in.slots_per_rank = 3, in.load = {{10, 1, 30, 2}};
  const LayerPlacement lp = place_experts("replicate", in)[0];
  // 30 → 15 per replica; an expert has at most one replica per member, so the next spare slot
  // goes to 10 → 5. Packed: {15, 5, 2} | {15, 5, 1}.
  EXPECT_EQ(lp.log_to_phy[2].size(), 2u);
  EXPECT_EQ(lp.log_to_phy[0].size(), 2u);
  EXPECT_EQ(lp.log_to_phy[1].size(), 1u);
  EXPECT_EQ(lp.log_to_phy[3].size(), 1u);
  EXPECT_DOUBLE_EQ(member_imbalance(lp, in.load[0]), 22 / 21.5);
}

TEST(PlacementHierarchical, KeepsGroupsOnNodesAndBalancesNodes) {
  PlacementInput in;
  in.num_experts = 64, in.ep = 16, in.slots_per_rank = 5, in.layers = 3;
  in.node_of_member = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};  // members interleaved over nodes
  in.load = {zipf(64, 0.6), zipf(64, 1.0, 5), zipf(64, 1.2, 9)};
  const Placement p = place_experts("hierarchical", in);
  PlacementInput flat = in;
  flat.slots_per_rank = 0;
  const Placement uni = place_experts("uniform", flat);
  // Node load: the sum of its experts' load (a group never leaves its node).
  auto node_imbalance = [&](const LayerPlacement& lp, const std::vector<double>& w) {
    std::vector<double> node_load(4, 0.0);
    for (int64_t e = 0; e < 64; ++e)
      for (int64_t s : lp.log_to_phy[e])
        node_load[in.node_of_member[lp.rank_of_slot(s)]] += w[e] / double(lp.log_to_phy[e].size());
    return *std::max_element(node_load.begin(), node_load.end()) /
           (std::accumulate(node_load.begin(), node_load.end(), 0.0) / 4);
  };
  for (size_t l = 0; l < p.size(); ++l) {
    for (int64_t g = 0; g < 16; ++g) {  // groups of E/ep = 4 experts
      std::set<int64_t> nodes;
      for (int64_t e = 4 * g; e < 4 * g + 4; ++e)
        for (int64_t s : p[l].log_to_phy[e]) nodes.insert(in.node_of_member[p[l].rank_of_slot(s)]);
      EXPECT_EQ(nodes.size(), 1u) << "group " << g << " spans nodes";
    }
    const double h = node_imbalance(p[l], in.load[l]), u = node_imbalance(uni[l], in.load[l]);
    std::printf("hierarchical layer %zu: node max/mean %.3f (uniform %.3f), member max/mean %.3f (uniform %.3f)\n", l,
                h, u, member_imbalance(p[l], in.load[l]), member_imbalance(uni[l], in.load[l]));
    EXPECT_LT(h, u);
    if (l == 0) {
      EXPECT_LE(h, 1.05);  // mild skew: groups pack evenly
    }
  }
}

TEST(PlacementDataDriven, CutsCrossNodeCoselectionOnPlantedPairs) {
  // 8 experts, pairs {0,5} {1,6} {2,7} {3,4} strongly co-selected; uniform splits every pair.
  const int64_t E = 8;
  std::vector<double> c(E * E, 1.0);
  const int64_t pairs[4][2] = {{0, 5}, {1, 6}, {2, 7}, {3, 4}};
  for (const auto& [a, b] : pairs) c[a * E + b] = c[b * E + a] = 100;
  PlacementInput in;
  in.num_experts = E, in.ep = 4, in.node_of_member = {0, 0, 1, 1}, in.coselection = {c};
  const LayerPlacement uni = place_experts("uniform", in)[0], dd = place_experts("data_driven", in)[0];
  auto inter = [&](const LayerPlacement& lp) {
    return placement_traffic(lp, sent_from_coselection(lp, c, E), 1, in.node_of_member, "spread", 1.0).inter_bytes;
  };
  EXPECT_EQ(inter(uni), 4 * 8 * (100 + 3));  // four phases, 8 experts: its pair and 3 others cross
  EXPECT_EQ(inter(dd), 4 * 8 * 4);           // only the background crosses
  EXPECT_LE(inter(dd), 0.8 * inter(uni));
  for (const auto& [a, b] : pairs)
    EXPECT_EQ(in.node_of_member[dd.rank_of_slot(dd.log_to_phy[a][0])],
              in.node_of_member[dd.rank_of_slot(dd.log_to_phy[b][0])]);
}

TEST(PlacementDataDriven, PlantedClustersUnderSkewedLoadStayBalanced) {
  // 64 experts in 4 hidden clusters of 16 (scattered indices), 16 members on 4 nodes.
  const int64_t E = 64;
  std::vector<int64_t> cluster(E);
  for (int64_t e = 0; e < E; ++e) cluster[(e * 23 + 5) % E] = e % 4;
  std::vector<double> c = random_coselection(E, 11);
  for (int64_t a = 0; a < E; ++a)
    for (int64_t b = 0; b < E; ++b)
      if (a != b && cluster[a] == cluster[b]) c[a * E + b] += 400;
  PlacementInput in;
  in.num_experts = E, in.ep = 16, in.node_of_member = nodes_of(16, 4), in.coselection = {c}, in.load = {zipf(E, 0.6)};
  auto inter = [&](const std::string& s) {
    const LayerPlacement lp = place_experts(s, in)[0];
    return placement_traffic(lp, sent_from_coselection(lp, c, E), 1, in.node_of_member, "spread", 1.0).inter_bytes;
  };
  const double uni = inter("uniform"), dd = inter("data_driven");
  std::printf("planted clusters: cross-node co-selection, data_driven / uniform = %.3f\n", dd / uni);
  EXPECT_LE(dd, 0.8 * uni);
  // Node load within the 5 % bound (or the balanced packing's own imbalance).
  const LayerPlacement lp = place_experts("data_driven", in)[0];
  std::vector<double> node_load(4, 0.0);
  for (int64_t e = 0; e < E; ++e) node_load[in.node_of_member[lp.rank_of_slot(lp.log_to_phy[e][0])]] += in.load[0][e];
  const double mean = std::accumulate(node_load.begin(), node_load.end(), 0.0) / 4;
  EXPECT_LE(*std::max_element(node_load.begin(), node_load.end()) / mean, 1.05 + 1e-9);
}

TEST(PlacementTraffic, HandComputedUniform) {
  PlacementInput in;
  in.num_experts = 4, in.ep = 2;
  const LayerPlacement lp = place_experts("uniform", in)[0];  // member 0: experts 0, 1; member 1: 2, 3
  const PlacementTraffic t = placement_traffic(lp, {{3, 1, 2, 0}, {1, 0, 4, 5}}, 1, {0, 1}, "spread", 10.0);
  EXPECT_EQ(t.rows, (std::vector<int64_t>{4, 2, 1, 9}));
  EXPECT_EQ(t.dispatch_fwd[0].inter, 20);
  EXPECT_EQ(t.dispatch_fwd[1].inter, 10);
  EXPECT_EQ(t.combine_fwd[0].inter, 10);
  EXPECT_EQ(t.combine_fwd[1].inter, 20);
  EXPECT_EQ(t.combine_bwd[0].inter, 20);
  EXPECT_EQ(t.dispatch_bwd[1].inter, 20);
  EXPECT_EQ(t.intra_bytes, 0);
  EXPECT_EQ(t.inter_bytes, 120);
  EXPECT_EQ(t.computed, (std::vector<int64_t>{5, 11}));
  EXPECT_DOUBLE_EQ(t.imbalance, 11.0 / 8.0);
}

TEST(PlacementTraffic, HandComputedReplicasSpreadPerUnit) {
  const LayerPlacement lp = layer_from_map({0, 1, 0, 1}, 2, 2);  // each member holds both experts
  // unit_rows[member][expert][unit]; unit u of member m goes to candidate (u + m) mod 2.
  const PlacementTraffic t = placement_traffic(lp, {{{3, 5}, {2}}, {{4}, {1, 6}}}, {}, "spread", 2.0);
  EXPECT_EQ(t.rows, (std::vector<int64_t>{5, 5, 6, 5}));
  EXPECT_EQ(t.dispatch_fwd[0].intra, 10);
  EXPECT_EQ(t.dispatch_fwd[1].intra, 12);
  EXPECT_EQ(t.combine_fwd[0].intra, 12);
  EXPECT_EQ(t.combine_fwd[1].intra, 10);
  EXPECT_EQ(t.intra_bytes, 88);
  EXPECT_EQ(t.inter_bytes, 0);
  EXPECT_EQ(t.computed, (std::vector<int64_t>{11, 10}));
}

TEST(PlacementTraffic, LocalPolicyKeepsReplicatedRowsOnTheNode) {
  const LayerPlacement lp = layer_from_map({0, 1, 0, 1}, 2, 4);  // expert 0 on members 0, 2; expert 1 on 1, 3
  const std::vector<int64_t> nodes = {0, 0, 1, 1};
  const std::vector<std::vector<int64_t>> sent(4, {10, 20});
  const PlacementTraffic local = placement_traffic(lp, sent, 2, nodes, "local", 1.0);
  EXPECT_EQ(local.rows, (std::vector<int64_t>{10, 20, 0, 0, 10, 20, 0, 0, 0, 0, 10, 20, 0, 0, 10, 20}));
  EXPECT_EQ(local.inter_bytes, 0);
  EXPECT_EQ(local.intra_bytes, 2 * (20 + 10 + 20 + 10) * 2);
  const PlacementTraffic spread = placement_traffic(lp, sent, 2, nodes, "spread", 1.0);
  for (int64_t m = 0; m < 4; ++m)
    EXPECT_EQ(std::vector<int64_t>(spread.rows.begin() + 4 * m, spread.rows.begin() + 4 * m + 4),
              (std::vector<int64_t>{5, 10, 5, 10}));
  EXPECT_EQ(spread.dispatch_fwd[0].inter, 15);
  EXPECT_EQ(spread.dispatch_fwd[0].intra, 10);
  // Seconds: an exchange lasts as long as the busiest link direction (member 1 receives 20 rows
  // over the inter-node link).
  HardwareProfile hw;
  hw.intra_node_bw = 100, hw.inter_node_bw = 10, hw.comm_efficiency = 0.5;
  EXPECT_DOUBLE_EQ(placement_a2a_seconds(spread, hw), 4 * 20.0 / 5.0);
}

TEST(PlacementTraffic, RowsAreConservedAndMatchTheCostModel) {
  PlacementInput in;
  in.num_experts = 16, in.ep = 8, in.slots_per_rank = 3, in.node_of_member = nodes_of(8, 2), in.load = {zipf(16, 1.0)};
  const JobSpec spec;  // bytes per row: d_model × sizeof(fp32)
  const double B = a2a_bytes_per_copy(spec);
  for (const char* s : {"uniform", "replicate", "data_driven"}) {
    if (std::string(s) == "uniform") in.slots_per_rank = 0;
    const LayerPlacement lp = place_experts(s, in)[0];
    std::vector<std::vector<std::vector<int64_t>>> units(8, std::vector<std::vector<int64_t>>(16));
    int64_t total = 0;
    for (int64_t m = 0; m < 8; ++m)
      for (int64_t e = 0; e < 16; ++e)
        for (int64_t u = 0; u < 4; ++u) total += units[m][e].emplace_back((m * 7 + e * 3 + u * 5) % 11);
    for (const char* policy : {"spread", "local"}) {
      const PlacementTraffic t = placement_traffic(lp, units, in.node_of_member, policy, B);
      EXPECT_EQ(std::accumulate(t.rows.begin(), t.rows.end(), int64_t{0}), total) << s << " " << policy;
      EXPECT_EQ(std::accumulate(t.computed.begin(), t.computed.end(), int64_t{0}), total);
      // The cost model's exact flat rule (cost_model.h a2a_bytes_for_routing) on the same rows.
      A2aRouting r;
      r.members = 8, r.node_of = in.node_of_member, r.copies = t.rows;
      for (int64_t m = 0; m < 8; ++m) {
        const auto phases = a2a_bytes_for_routing(spec, r, m);
        const LinkBytes* ours[4] = {&t.dispatch_fwd[m], &t.combine_fwd[m], &t.combine_bwd[m], &t.dispatch_bwd[m]};
        for (int k = 0; k < 4; ++k) {
          EXPECT_DOUBLE_EQ(ours[k]->intra, phases[k].intra) << s << " member " << m << " phase " << k;
          EXPECT_DOUBLE_EQ(ours[k]->inter, phases[k].inter) << s << " member " << m << " phase " << k;
        }
      }
    }
    in.slots_per_rank = 3;
  }
}

TEST(PlacementSpec, ExplicitAndReplicateFromTheSpec) {
  const std::vector<std::string> base = {"parallel.ep=4", "cluster.nodes.0.slots=4"};
  auto spec = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), base.begin(), base.end());
    return parse_spec("{}", extra);
  };
  const JobSpec uni = spec({"placement.strategy=explicit", "placement.map=[[0,1,2,3,4,5,6,7]]"});
  const Placement p = placement_for_spec(uni);
  EXPECT_EQ(static_cast<int64_t>(p.size()), uni.model.moe_layers());
  EXPECT_TRUE(is_uniform(p, 8));
  const JobSpec rep = spec({"placement.strategy=replicate", "placement.slots_per_rank=3"});
  const std::vector<std::vector<double>> load(4, zipf(8, 1.0));
  const Placement r = placement_for_spec(rep, load);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].slots(), 12);
  EXPECT_LT(member_imbalance(r[0], load[0]), member_imbalance(p[0], load[0]));
  EXPECT_FALSE(has_errors(validate_spec(rep)));
}

TEST(PlacementSpec, ValidationNamesTheBadMapRow) {
  const JobSpec s =
      parse_spec("{}", {"parallel.ep=4", "cluster.nodes.0.slots=4", "placement.strategy=explicit",
                        "placement.map=[[0,1,2,3,4,5,6,7],[0,0,1,2,3,4,5,6],[0,1,2,3,4,5,6,7],[0,1,2,3,4,5,6,7]]"});
  bool found = false;
  for (const Diagnostic& d : validate_spec(s))
    if (d.severity == Severity::error && d.path == "placement.map.1") {
      found = true;
      EXPECT_EQ(d.message, "expert 0 has two replicas on EP rank 0 (slots 0 and 1)");
    }
  EXPECT_TRUE(found);
  const JobSpec missing = parse_spec("{}", {"placement.strategy=explicit", "placement.map=[[0,1,2,3,4,5,6]]"});
  bool named = false;
  for (const Diagnostic& d : validate_spec(missing))
    named |= d.severity == Severity::error && d.path == "placement.map.0";
  EXPECT_TRUE(named);
}
