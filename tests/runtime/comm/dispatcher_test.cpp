// AllToAllDispatcher on 4 real processes against LocalDispatcher on the same tokens: with experts
// that are simple per-expert functions, every rank's y, dweight and dx must equal what one process
// computes for that rank's tokens with all experts local — including a rank with zero tokens and
// experts that receive no rows.
#include <gtest/gtest.h>
#include <random>

#include "all_to_all_dispatcher.h"
#include "comm_groups.h"
#include "error.h"
#include "local_dispatcher.h"
#include "proc_util.h"
#include "rendezvous.h"

using namespace moe::rt::comm;
using namespace std::chrono_literals;
using moe::rt::Assignments;
using moe::rt::DispatchHandle;

namespace {

constexpr int64_t kExperts = 8, kTopK = 2, kD = 16;

// Rank r's tokens (rank 3 has none) and their routing: experts 5 and 6 are never chosen.
Assignments make_assignments(int rank, int64_t tokens, std::mt19937& rng) {
  Assignments a;
  a.num_tokens = tokens;
  a.num_experts = kExperts;
  a.top_k = kTopK;
  a.counts.assign(kExperts, 0);
  a.dropped.assign(kExperts, 0);
  const int32_t allowed[] = {0, 1, 2, 3, 4, 7};
  for (int64_t t = 0; t < tokens; ++t) {
    int32_t e1 = allowed[rng() % 6], e2;
    do e2 = allowed[rng() % 6];
    while (e2 == e1);
    for (int32_t e : {e1, e2}) {
      a.token.push_back(static_cast<int32_t>(t));
      a.expert.push_back(e);
      // Drop one in seven assignments, as capacity would.
      const bool drop = (t * 7 + e + rank) % 7 == 0;
      a.route.push_back(drop ? -1 : e);
      a.counts[e]++;
      a.dropped[e] += drop;
    }
  }
  return a;
}

// Expert e: out = (e + 1) · in + 0.5 e, applied to the rows of each expert block.
void run_experts(const DispatchHandle<double>& h, int64_t first, const double* in, double* out) {
  for (size_t i = 0; i + 1 < h.expert_offsets.size(); ++i)
    for (int64_t r = h.expert_offsets[i]; r < h.expert_offsets[i + 1]; ++r)
      for (int64_t c = 0; c < h.d; ++c)
        out[r * h.d + c] = (first + static_cast<int64_t>(i) + 1) * in[r * h.d + c] + 0.5 * (first + static_cast<int64_t>(i));
}
void run_experts_backward(const DispatchHandle<double>& h, int64_t first, const double* dout, double* din) {
  for (size_t i = 0; i + 1 < h.expert_offsets.size(); ++i)
    for (int64_t r = h.expert_offsets[i]; r < h.expert_offsets[i + 1]; ++r)
      for (int64_t c = 0; c < h.d; ++c) din[r * h.d + c] = (first + static_cast<int64_t>(i) + 1) * dout[r * h.d + c];
}

struct Result {
  std::vector<double> y, dweight, dx;
  int64_t chunks = 0;  // chunks the dispatcher made (0: none)
};

// Overlap chunks: the expert rows are chunk-major; run the same expert functions chunk by chunk
// between the dispatcher's wait/start calls, as MoeCompute does.
void run_chunked(moe::rt::Dispatcher<double>& disp, DispatchHandle<double>& h, const double* in, double* out, bool backward,
                 const double* weight) {
  const int64_t first = disp.first_expert();
  for (size_t c = 0; c + 1 < h.chunk_offsets.size(); ++c) {
    if (backward) disp.wait_combine_backward_chunk(h, static_cast<int64_t>(c));
    else disp.wait_dispatch_chunk(h, static_cast<int64_t>(c));
    const auto& off = h.chunk_expert_offsets[c];
    for (size_t i = 0; i + 1 < off.size(); ++i)
      for (int64_t r = h.chunk_offsets[c] + off[i]; r < h.chunk_offsets[c] + off[i + 1]; ++r)
        for (int64_t k = 0; k < h.d; ++k) {
          const double scale = static_cast<double>(first + static_cast<int64_t>(i) + 1);
          out[r * h.d + k] = backward ? scale * in[r * h.d + k] : scale * in[r * h.d + k] + 0.5 * (first + static_cast<int64_t>(i));
        }
    if (backward) disp.start_dispatch_backward_chunk(h, static_cast<int64_t>(c), out);
    else disp.start_combine_chunk(h, static_cast<int64_t>(c), out, weight);
  }
}

Result forward_backward(moe::rt::Dispatcher<double>& disp, const Assignments& a, const std::vector<double>& x,
                        const std::vector<double>& w, const std::vector<double>& dy) {
  DispatchHandle<double> h;
  disp.dispatch(a, x.data(), kD, h);
  const bool chunked = !h.chunk_offsets.empty();
  std::vector<double> out(h.expert_input.size());
  if (chunked) run_chunked(disp, h, h.expert_input.data(), out.data(), false, w.data());
  else run_experts(h, disp.first_expert(), h.expert_input.data(), out.data());
  Result r;
  r.chunks = chunked ? static_cast<int64_t>(h.chunk_offsets.size()) - 1 : 0;
  r.y.assign(x.size(), 0.0);
  disp.combine(h, out.data(), w.data(), r.y.data());
  r.dweight.assign(a.size(), -1.0);
  std::vector<double> dout(out.size()), din(out.size());
  disp.combine_backward(h, dy.data(), r.dweight.data(), dout.data());
  if (chunked) run_chunked(disp, h, dout.data(), din.data(), true, w.data());
  else run_experts_backward(h, disp.first_expert(), dout.data(), din.data());
  r.dx.assign(x.size(), 0.0);
  disp.dispatch_backward(h, din.data(), r.dx.data());
  return r;
}

}  // namespace

// hierarchical: 2 virtual nodes of 2 ranks; chunks > 1: overlap.
void expect_matches_local(bool hierarchical, int64_t chunks) {
  const int port = test::free_port();
  auto result = test::fork_ranks(4, [&](int rank) {
    RankEnv env;
    env.rank = rank;
    env.world_size = 4;
    env.master_port = port;
    env.timeout = 10s;
    auto group = init_process_group(env);
    std::mt19937 rng(100 + rank);
    const int64_t tokens = rank == 3 ? 0 : 5 + 9 * rank;
    Assignments a = make_assignments(rank, tokens, rng);
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> x(tokens * kD), w(a.size()), dy(tokens * kD);
    for (auto& v : x) v = u(rng);
    for (auto& v : w) v = u(rng);
    for (auto& v : dy) v = u(rng);
    AllToAllDispatcher<double> ep(*group->world, kExperts);
    if (ep.first_expert() != 2 * rank || ep.local_experts() != 2) throw moe::Error("expert placement");
    CommGroups groups;
    if (hierarchical) {
      const moe::RankLayout layout = moe::make_rank_layout(1, 4, 1, 1, 2);
      groups = make_comm_groups(*group->world, layout);
      ep.set_peer_nodes({0, 0, 1, 1});
      ep.set_hierarchical(*groups.ep_intra, *groups.ep_inter);
    }
    ep.set_overlap_chunks(chunks);
    moe::rt::LocalDispatcher<double> local(kExperts);
    const Result got = forward_backward(ep, a, x, w, dy);
    const Result want = forward_backward(local, a, x, w, dy);
    if (got.chunks != (chunks > 1 ? chunks : 0)) throw moe::Error("made " + std::to_string(got.chunks) + " chunks");
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::abs(got.y[i] - want.y[i]) > 1e-12) throw moe::Error("y differs at " + std::to_string(i));
      if (std::abs(got.dx[i] - want.dx[i]) > 1e-12) throw moe::Error("dx differs at " + std::to_string(i));
    }
    for (size_t i = 0; i < w.size(); ++i)
      if (std::abs(got.dweight[i] - want.dweight[i]) > 1e-12) throw moe::Error("dweight differs at " + std::to_string(i));
    group->world->barrier();
  });
  EXPECT_EQ(test::failures(result), "");
}

TEST(AllToAllDispatcher, MatchesLocalDispatcherOnEveryRank) { expect_matches_local(false, 1); }
TEST(AllToAllDispatcher, HierarchicalMatchesLocalDispatcher) { expect_matches_local(true, 1); }
TEST(AllToAllDispatcher, OverlapChunksMatchLocalDispatcher) { expect_matches_local(false, 3); }
// Hierarchical with overlap: chunks are token ranges of each rank (rank 0 has 5 tokens, so with 6
// chunks one of its chunks is empty; rank 3 has none at all), with drops and unused experts.
TEST(AllToAllDispatcher, HierarchicalOverlapChunksMatchLocalDispatcher) {
  for (int64_t chunks : {2, 3, 6}) {
    SCOPED_TRACE("chunks " + std::to_string(chunks));
    expect_matches_local(true, chunks);
  }
}
