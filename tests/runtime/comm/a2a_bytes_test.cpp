// The cost model's all-to-all bytes (core/cost_model.h, docs/cost-model.md §4) against what the
// runtime's dispatcher measures, for the same spec, on 4 real processes (ep 4, 2 virtual nodes of
// 2), T = micro_batch · seq_len tokens per rank:
//   - with routing that gives every expert exactly T·k/E of each rank's copies, the plan's figures
//     (the expectation under uniform routing) are exact: every phase, the flat intra/inter split,
//     hierarchical top-1, overlap chunks;
//   - with random routing and drops, every rank's measured bytes of every phase equal
//     a2a_bytes_for_routing() applied to that step's actual routing, flat and hierarchical (the
//     hierarchical exchange sends a token once per remote node);
//   - over 24 steps of uniform random top-2 routing, the measured mean approaches the plan's
//     expectation (hier_inter = T·(N−1)·(1 − P_miss) rows per phase), dropless and with a
//     capacity (the plan's kept share of the copies, the global position policy simulated).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

#include "all_to_all_dispatcher.h"
#include "comm_groups.h"
#include "cost_model.h"
#include "hardware_profile.h"
#include "proc_util.h"
#include "rank_layout.h"
#include "rendezvous.h"

using namespace moe::rt::comm;
using namespace std::chrono_literals;
using moe::rt::Assignments;
using moe::rt::DispatchHandle;

namespace {

moe::JobSpec make_spec(int64_t top_k, bool hierarchical) {
  moe::JobSpec s;
  s.model.d_model = 64;
  s.model.seq_len = 32;
  s.model.moe.num_experts = 8;
  s.model.moe.top_k = top_k;
  s.routing.capacity_factor = 0;  // dropless
  s.parallel.ep = 4;
  s.parallel.gpus_per_node = 2;
  s.parallel.hierarchical_a2a = hierarchical;
  s.train.micro_batch = 2;
  s.train.grad_accum = 1;
  s.runtime.dtype = "fp32";
  return s;
}

// No assignments yet, for `tokens` tokens routed to top-k of `experts`.
Assignments empty_assignments(int64_t tokens, int64_t experts, int64_t k) {
  Assignments a;
  a.num_tokens = tokens;
  a.num_experts = experts;
  a.top_k = k;
  a.counts.assign(static_cast<size_t>(experts), 0);
  a.dropped.assign(static_cast<size_t>(experts), 0);
  return a;
}

// Token t takes experts t, t+1, … (mod E): each expert gets exactly T·k/E copies of every rank.
Assignments balanced(int64_t tokens, int64_t experts, int64_t k) {
  Assignments a = empty_assignments(tokens, experts, k);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = static_cast<int32_t>((t + j) % experts);
      a.token.push_back(static_cast<int32_t>(t));
      a.expert.push_back(e);
      a.route.push_back(e);
      ++a.counts[e];
    }
  return a;
}

// Uniform random top-k routing of rank r at step `step` (distinct experts), each assignment dropped
// with probability drop_share (as capacity would): every rank can rebuild every rank's routing.
Assignments random_routing(int64_t rank, int64_t step, int64_t tokens, int64_t experts, int64_t k, double drop_share) {
  std::mt19937_64 rng(static_cast<uint64_t>(1000 * rank + step + 17));
  Assignments a = empty_assignments(tokens, experts, k);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<int32_t> chosen;
    while (static_cast<int64_t>(chosen.size()) < k) {
      const int32_t e = static_cast<int32_t>(rng() % static_cast<uint64_t>(experts));
      if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
    }
    for (int32_t e : chosen) {
      const bool drop = static_cast<double>(rng() % 1000) < drop_share * 1000;
      a.token.push_back(static_cast<int32_t>(t));
      a.expert.push_back(e);
      a.route.push_back(drop ? -1 : e);
      ++a.counts[e];
      a.dropped[e] += drop;
    }
  }
  return a;
}

// Forward and backward of one layer per step through one dispatcher; per step, this rank's figures.
std::vector<A2ATimes> run_steps(const moe::JobSpec& spec, int rank, int port, int64_t chunks, int64_t steps,
                                const std::function<Assignments(int64_t)>& routing) {
  RankEnv env;
  env.rank = rank;
  env.world_size = 4;
  env.master_port = port;
  env.timeout = 20s;
  auto pg = init_process_group(env);
  const moe::RankLayout layout = moe::make_rank_layout(spec.parallel);
  CommGroups groups = make_comm_groups(*pg->world, layout);
  AllToAllDispatcher<float> dispatcher(*groups.ep, spec.model.moe.num_experts);
  std::vector<int64_t> nodes;
  for (int r : groups.ep->world_ranks()) nodes.push_back(layout.ranks[static_cast<size_t>(r)].node);
  dispatcher.set_peer_nodes(nodes);
  if (spec.parallel.hierarchical_a2a) dispatcher.set_hierarchical(*groups.ep_intra, *groups.ep_inter);
  dispatcher.set_overlap_chunks(chunks);
  const int64_t T = spec.train.micro_batch * spec.model.seq_len, d = spec.model.d_model;
  std::vector<A2ATimes> out;
  for (int64_t step = 0; step < steps; ++step) {
    const Assignments asg = routing(step);
    std::vector<float> x(static_cast<size_t>(T * d), 1.0f), y(x.size()), dx(x.size()), dy(x.size(), 1.0f);
    std::vector<float> weight(asg.token.size(), 0.5f), dweight(weight.size());
    DispatchHandle<float> h;
    dispatcher.dispatch(asg, x.data(), d, h);
    if (chunks > 1 && static_cast<int64_t>(h.chunk_offsets.size()) != chunks + 1)
      throw std::runtime_error("the dispatcher made " + std::to_string(h.chunk_offsets.size()) + " chunk offsets for " +
                               std::to_string(chunks) + " chunks");
    std::vector<float> out_rows(static_cast<size_t>(h.expert_rows() * d)), dout(out_rows.size());
    for (int64_t c = 0; c < std::max<int64_t>(1, static_cast<int64_t>(h.chunk_offsets.size()) - 1); ++c) {
      dispatcher.wait_dispatch_chunk(h, c);
      dispatcher.start_combine_chunk(h, c, h.expert_input.data(), weight.data());
    }
    std::copy(h.expert_input.begin(), h.expert_input.end(), out_rows.begin());
    dispatcher.combine(h, out_rows.data(), weight.data(), y.data());
    dispatcher.combine_backward(h, dy.data(), dweight.data(), dout.data());
    for (int64_t c = 0; c < std::max<int64_t>(1, static_cast<int64_t>(h.chunk_offsets.size()) - 1); ++c) {
      dispatcher.wait_combine_backward_chunk(h, c);
      dispatcher.start_dispatch_backward_chunk(h, c, dout.data());
    }
    dispatcher.dispatch_backward(h, dout.data(), dx.data());
    out.push_back(dispatcher.take_totals());
  }
  return out;
}

// One layer's forward and backward through the dispatcher; returns this rank's totals.
A2ATimes run_layer(const moe::JobSpec& spec, int rank, int port, int64_t chunks) {
  const int64_t T = spec.train.micro_batch * spec.model.seq_len;
  return run_steps(spec, rank, port, chunks, 1, [&](int64_t) {
    return balanced(T, spec.model.moe.num_experts, spec.model.moe.top_k);
  })[0];
}

// Runs the 4 ranks and checks rank r's totals against the plan (every rank is alike here).
void expect_plan(int64_t top_k, bool hierarchical, int64_t chunks) {
  const moe::JobSpec spec = make_spec(top_k, hierarchical);
  const moe::Plan plan = moe::plan_job(spec, moe::builtin_hardware_profiles().front());
  const int port = test::free_port();
  auto result = test::fork_ranks(4, [&](int rank) {
    const A2ATimes t = run_layer(spec, rank, port, chunks);
    int64_t intra = 0, inter = 0;
    for (int ph = 0; ph < 4; ++ph) {
      if (!hierarchical && t[ph].bytes != static_cast<int64_t>(plan.a2a.dispatch_fwd))
        throw std::runtime_error("phase " + std::to_string(ph) + ": measured " + std::to_string(t[ph].bytes) +
                                 " bytes, the cost model predicts " + std::to_string(plan.a2a.dispatch_fwd));
      intra += t[ph].intra_bytes;
      inter += t[ph].inter_bytes;
    }
    const double want_intra = hierarchical ? plan.a2a.hier_intra : plan.a2a.flat_intra;
    const double want_inter = hierarchical ? plan.a2a.hier_inter : plan.a2a.flat_inter;
    if (intra != static_cast<int64_t>(want_intra) || inter != static_cast<int64_t>(want_inter))
      throw std::runtime_error("rank " + std::to_string(rank) + ": measured intra " + std::to_string(intra) + " inter " +
                               std::to_string(inter) + " bytes per layer, the cost model predicts intra " +
                               std::to_string(want_intra) + " inter " + std::to_string(want_inter));
  });
  EXPECT_EQ(test::failures(result), "");
  EXPECT_GT(plan.a2a.flat_inter, 0);  // the spec does cross the virtual node boundary
}

TEST(A2aBytesVsCostModel, FlatDroplessEveryPhaseAndTheNodeSplit) { expect_plan(2, false, 1); }
TEST(A2aBytesVsCostModel, OverlapChunksMoveTheSameBytes) { expect_plan(2, false, 4); }
TEST(A2aBytesVsCostModel, HierarchicalTopOneIntraAndInter) { expect_plan(1, true, 1); }
TEST(A2aBytesVsCostModel, HierarchicalOverlapChunksTopOne) { expect_plan(1, true, 4); }

// Random top-2 routing with drops, 3 steps: every rank's bytes of every phase equal the cost
// model's function of the routing that happened (rebuilt here from the same seeds).
void expect_routing_function(bool hierarchical, double drop_share, int64_t chunks = 1) {
  const moe::JobSpec spec = make_spec(2, hierarchical);
  const int64_t T = spec.train.micro_batch * spec.model.seq_len, E = spec.model.moe.num_experts;
  const int port = test::free_port();
  auto result = test::fork_ranks(4, [&](int rank) {
    const auto steps = run_steps(spec, rank, port, chunks, 3, [&](int64_t step) {
      return random_routing(rank, step, T, E, 2, drop_share);
    });
    for (int64_t step = 0; step < 3; ++step) {
      std::vector<std::vector<std::pair<int64_t, int64_t>>> kept(4);
      for (int64_t r = 0; r < 4; ++r) {
        const Assignments a = random_routing(r, step, T, E, 2, drop_share);
        for (int64_t i = 0; i < a.size(); ++i)
          if (a.route[i] >= 0) kept[r].emplace_back(a.token[i], a.route[i]);
      }
      const moe::A2aRouting routing = moe::a2a_routing_from_copies(E, {0, 0, 1, 1}, kept);
      const auto want = moe::a2a_bytes_for_routing(spec, routing, rank);
      for (int ph = 0; ph < 4; ++ph) {
        const A2AStat& got = steps[step][ph];
        if (got.bytes != static_cast<int64_t>(want[ph].sent) || got.intra_bytes != static_cast<int64_t>(want[ph].intra) ||
            got.inter_bytes != static_cast<int64_t>(want[ph].inter))
          throw std::runtime_error("step " + std::to_string(step) + " phase " + std::to_string(ph) + ": measured " +
                                   std::to_string(got.bytes) + " (intra " + std::to_string(got.intra_bytes) + ", inter " +
                                   std::to_string(got.inter_bytes) + "), the cost model gives " +
                                   std::to_string(want[ph].sent) + " (intra " + std::to_string(want[ph].intra) +
                                   ", inter " + std::to_string(want[ph].inter) + ")");
        if (hierarchical && ph != 3 && got.meta_bytes <= 0 && got.inter_bytes > 0)
          throw std::runtime_error("phase " + std::to_string(ph) + ": no routing metadata recorded");
      }
    }
  });
  EXPECT_EQ(test::failures(result), "");
}

TEST(A2aBytesVsCostModel, FlatBytesAreTheFunctionOfTheRouting) { expect_routing_function(false, 0.0); }
TEST(A2aBytesVsCostModel, FlatCapacityDropsSendOnlyKeptRows) { expect_routing_function(false, 0.2); }
TEST(A2aBytesVsCostModel, HierarchicalBytesAreTheFunctionOfTheRouting) { expect_routing_function(true, 0.0); }
TEST(A2aBytesVsCostModel, HierarchicalWithDrops) { expect_routing_function(true, 0.2); }
// Hierarchical with 4 overlap chunks (token ranges): a token is still sent once per remote node.
TEST(A2aBytesVsCostModel, HierarchicalOverlapChunksWithDrops) { expect_routing_function(true, 0.2, 4); }

// The function itself, on a case worked by hand: member 0 (node 0) sends token 0 to experts 4 and
// 6 (both on node 1: members 2 and 3) and token 1 to expert 5 (member 2) and expert 1 (member 0).
TEST(A2aBytesVsCostModel, HierarchicalCountsATokenOncePerRemoteNode) {
  moe::JobSpec spec = make_spec(2, true);
  const moe::A2aRouting r = moe::a2a_routing_from_copies(8, {0, 0, 1, 1}, {{{0, 4}, {0, 6}, {1, 5}, {1, 1}}, {}, {}, {}});
  EXPECT_EQ(r.copies[0 * 4 + 2], 2);  // experts 4 and 5 on member 2
  EXPECT_EQ(r.node_tokens[0 * 2 + 1], 2);  // tokens 0 and 1 reach node 1
  const double B = 64 * 4;
  const auto hier = moe::a2a_bytes_for_routing(spec, r, 0);
  EXPECT_EQ(hier[0].inter, 2 * B);  // 3 copies to node 1, 2 distinct tokens
  EXPECT_EQ(hier[0].intra, 0);      // expert 1 is on member 0 itself
  EXPECT_EQ(moe::a2a_bytes_for_routing(spec, r, 2)[0].intra, 1 * B);  // forwarder 2 hands token 0 to member 3
  EXPECT_EQ(moe::a2a_bytes_for_routing(spec, r, 3)[1].intra, 1 * B);  // and member 3's output comes back
  spec.parallel.hierarchical_a2a = false;
  EXPECT_EQ(moe::a2a_bytes_for_routing(spec, r, 0)[0].inter, 3 * B);
}

// Uniform random top-2 routing, 24 steps: the mean measured inter-node bytes per step approach
// the plan's expectation (flat and hierarchical), and deduplication cuts them.
// Rank `rank`'s routing at `step` under a capacity of C copies per expert over the 4 ranks' pooled
// batch, position policy (as GlobalRouting decides): every rank rebuilds all 4 routings and keeps
// an expert's first C copies in (rank, token, slot) order.
Assignments capacity_routing(int64_t rank, int64_t step, int64_t tokens, int64_t experts, int64_t k, int64_t C) {
  std::vector<int64_t> used(static_cast<size_t>(experts), 0);
  for (int64_t r = 0;; ++r) {
    Assignments a = random_routing(r, step, tokens, experts, k, 0.0);
    for (size_t i = 0; i < a.route.size(); ++i)
      if (used[static_cast<size_t>(a.expert[i])]++ >= C) a.route[i] = -1, ++a.dropped[static_cast<size_t>(a.expert[i])];
    if (r == rank) return a;
  }
}

// Over kSteps of uniform random top-2 routing, the ranks' mean inter-node bytes per layer and step
// against the plan's (flat_inter or hier_inter), flat and hierarchical; `cf` 0 is dropless. (The
// mean over ranks: with the position policy the first ranks' copies are dropped least.)
void expect_mean_near_plan(double cf) {
  constexpr int64_t kSteps = 24;
  double mean_inter[2] = {0, 0}, want[2] = {0, 0};
  for (bool hierarchical : {false, true}) {
    moe::JobSpec spec = make_spec(2, hierarchical);
    spec.routing.capacity_factor = cf;
    const moe::Plan plan = moe::plan_job(spec, moe::builtin_hardware_profiles().front());
    want[hierarchical] = hierarchical ? plan.a2a.hier_inter : plan.a2a.flat_inter;
    const int64_t T = spec.train.micro_batch * spec.model.seq_len, E = spec.model.moe.num_experts;
    const int64_t C = static_cast<int64_t>(std::ceil(cf * 4 * T * 2 / E - 1e-9));
    const int port = test::free_port();
    char path[] = "/tmp/a2a_mean_XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    auto result = test::fork_ranks(4, [&](int rank) {
      const auto steps = run_steps(spec, rank, port, 1, kSteps, [&](int64_t step) {
        return cf > 0 ? capacity_routing(rank, 100 + step, T, E, 2, C) : random_routing(rank, 100 + step, T, E, 2, 0.0);
      });
      double inter = 0;
      for (const A2ATimes& t : steps)
        for (int ph = 0; ph < 4; ++ph) inter += static_cast<double>(t[ph].inter_bytes);
      const std::string mine = std::string(path) + "." + std::to_string(rank);
      FILE* f = std::fopen(mine.c_str(), "w");
      if (!f) throw std::runtime_error("cannot write " + mine);
      std::fprintf(f, "%.17g\n", inter / kSteps);
      std::fclose(f);
    });
    ASSERT_EQ(test::failures(result), "");
    for (int rank = 0; rank < 4; ++rank) {
      const std::string mine = std::string(path) + "." + std::to_string(rank);
      FILE* f = std::fopen(mine.c_str(), "r");
      ASSERT_NE(f, nullptr);
      double v = 0;
      ASSERT_EQ(std::fscanf(f, "%lf", &v), 1);
      std::fclose(f);
      std::remove(mine.c_str());
      mean_inter[hierarchical] += v / 4;
    }
    std::remove(path);
    std::printf("cf %.2f, %s: mean inter-node bytes per layer and step %.1f, plan %.1f (ratio %.4f, plan keeps %.4f)\n", cf,
                hierarchical ? "hierarchical" : "flat", mean_inter[hierarchical], want[hierarchical],
                mean_inter[hierarchical] / want[hierarchical], plan.a2a.kept_share);
    EXPECT_NEAR(mean_inter[hierarchical] / want[hierarchical], 1.0, 0.025)
        << (hierarchical ? "hierarchical" : "flat") << ": mean " << mean_inter[hierarchical] << ", plan " << want[hierarchical];
  }
  EXPECT_LT(mean_inter[1], mean_inter[0] * 0.85);  // the plan's ratio is about 28/22 ≈ 1.27
}

TEST(A2aBytesVsCostModel, MeanOverStepsApproachesThePlan) { expect_mean_near_plan(0.0); }

// Capacity 1.0: about 6% of the copies are dropped over the pooled batch; the runtime sends only
// the kept ones and the plan expects exactly those (kept_share), flat and deduplicated.
TEST(A2aBytesVsCostModel, CapacityMeanOverStepsApproachesThePlan) { expect_mean_near_plan(1.0); }

}  // namespace
