// The cost model's all-to-all bytes (core/cost_model.h, docs/cost-model.md §4) against what the
// runtime's dispatcher measures, for the same spec: 4 real processes (ep 4, 2 virtual nodes of 2),
// T = micro_batch · seq_len tokens per rank routed so that every expert gets exactly T·k/E of
// each rank's copies (the cost model's dropless figure is the expectation under uniform routing;
// with this routing it is exact). Checked: every phase's bytes, the intra/inter split of the flat
// exchange, the hierarchical exchange (k = 1, where the cost model's deduplication has nothing to
// merge) and overlap chunks (same bytes).
#include <gtest/gtest.h>

#include <cstdio>

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

// Token t takes experts t, t+1, … (mod E): each expert gets exactly T·k/E copies of every rank.
Assignments balanced(int64_t tokens, int64_t experts, int64_t k) {
  Assignments a;
  a.num_tokens = tokens;
  a.num_experts = experts;
  a.top_k = k;
  a.counts.assign(static_cast<size_t>(experts), 0);
  a.dropped.assign(static_cast<size_t>(experts), 0);
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

// One layer's forward and backward through the dispatcher; returns this rank's totals.
A2ATimes run_layer(const moe::JobSpec& spec, int rank, int port, int64_t chunks) {
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
  const Assignments asg = balanced(T, spec.model.moe.num_experts, spec.model.moe.top_k);
  std::vector<float> x(static_cast<size_t>(T * d), 1.0f), y(x.size()), dx(x.size()), dy(x.size(), 1.0f);
  std::vector<float> weight(asg.token.size(), 0.5f), dweight(weight.size());
  DispatchHandle<float> h;
  dispatcher.dispatch(asg, x.data(), d, h);
  std::vector<float> out(static_cast<size_t>(h.expert_rows() * d)), dout(out.size()), din(out.size());
  for (int64_t c = 0; c < std::max<int64_t>(1, static_cast<int64_t>(h.chunk_offsets.size()) - 1); ++c) {
    dispatcher.wait_dispatch_chunk(h, c);
    dispatcher.start_combine_chunk(h, c, h.expert_input.data());
  }
  std::copy(h.expert_input.begin(), h.expert_input.end(), out.begin());
  dispatcher.combine(h, out.data(), weight.data(), y.data());
  dispatcher.combine_backward(h, dy.data(), dweight.data(), dout.data());
  for (int64_t c = 0; c < std::max<int64_t>(1, static_cast<int64_t>(h.chunk_offsets.size()) - 1); ++c) {
    dispatcher.wait_combine_backward_chunk(h, c);
    dispatcher.start_dispatch_backward_chunk(h, c, dout.data());
  }
  dispatcher.dispatch_backward(h, dout.data(), dx.data());
  return dispatcher.take_totals();
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

// Top-2 hierarchical: the cost model assumes a token crosses to a remote node once for all its
// experts there (DeepEP); this runtime forwards each (token, expert) copy, so it measures the flat
// inter-node bytes. The test pins that difference down so it cannot change unnoticed.
TEST(A2aBytesVsCostModel, HierarchicalTopTwoForwardsCopiesNotTokens) {
  const moe::JobSpec spec = make_spec(2, true);
  const moe::Plan plan = moe::plan_job(spec, moe::builtin_hardware_profiles().front());
  const int port = test::free_port();
  auto result = test::fork_ranks(4, [&](int rank) {
    const A2ATimes t = run_layer(spec, rank, port, 1);
    int64_t inter = 0;
    for (int ph = 0; ph < 4; ++ph) inter += t[ph].inter_bytes;
    if (inter != static_cast<int64_t>(plan.a2a.flat_inter))
      throw std::runtime_error("measured inter " + std::to_string(inter) + ", flat inter " + std::to_string(plan.a2a.flat_inter));
  });
  EXPECT_EQ(test::failures(result), "");
  EXPECT_LT(plan.a2a.hier_inter, plan.a2a.flat_inter);
}

}  // namespace
