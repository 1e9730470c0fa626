// Gloo collectives on real processes over 127.0.0.1, each checked against a plain reference
// computed from every rank's (deterministic, rank-dependent) inputs: all-reduce, all-to-all with
// per-peer counts including zero-count peers, all-gather, broadcast, send/recv, async all-to-all,
// and the layout's sub-groups (also for 4-D layouts).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <numeric>
#include <random>

#include "comm_groups.h"
#include "error.h"
#include "proc_util.h"
#include "rendezvous.h"

using namespace moe::rt::comm;
using namespace std::chrono_literals;

namespace {

void expect(bool ok, const std::string& what) {
  if (!ok) throw moe::Error("check failed: " + what);
}

// Runs body(group) on n forked ranks joined through a fresh store.
test::ForkResult with_world(int n, const std::function<void(ProcessGroup&)>& body) {
  const int port = test::free_port();
  return test::fork_ranks(n, [&](int rank) {
    RankEnv env;
    env.rank = rank;
    env.world_size = n;
    env.master_port = port;
    env.timeout = 10s;
    auto group = init_process_group(env);
    body(*group);
    group->world->barrier();  // rank 0 keeps the store alive until everyone is done
  });
}

// Counts rank `from` sends to rank `to` in the all-to-all test: includes zeros on purpose.
int64_t count_of(int from, int to, int round) { return (from * 7 + to * 3 + round) % 4 == 0 ? 0 : (from + 2 * to + round) % 5 + 1; }
float value_of(int from, int to, int64_t i) { return static_cast<float>(from * 1000 + to * 100 + i) + 0.25f; }

}  // namespace

TEST(GlooCollectives, AllReduceSumMatchesReference) {
  auto r = with_world(4, [](ProcessGroup& g) {
    auto& w = *g.world;
    const int n = w.size();
    std::vector<float> f(1000);
    std::vector<double> d(7);
    std::vector<int64_t> i(3);
    for (size_t k = 0; k < f.size(); ++k) f[k] = static_cast<float>(w.rank() + 1) * 0.5f + static_cast<float>(k);
    for (size_t k = 0; k < d.size(); ++k) d[k] = 1e-3 * (w.rank() + 1) * (k + 1);
    for (size_t k = 0; k < i.size(); ++k) i[k] = (int64_t{1} << 40) * (w.rank() + 1) + static_cast<int64_t>(k);
    w.all_reduce_sum(f.data(), f.size());
    w.all_reduce_sum(d.data(), d.size());
    w.all_reduce_sum(i.data(), i.size());
    w.all_reduce_sum(static_cast<float*>(nullptr), 0);  // empty is fine
    const double ranks_sum = n * (n + 1) / 2.0;
    for (size_t k = 0; k < f.size(); ++k) expect(f[k] == static_cast<float>(0.5 * ranks_sum + n * static_cast<double>(k)), "float sum");
    for (size_t k = 0; k < d.size(); ++k) expect(std::abs(d[k] - 1e-3 * ranks_sum * (k + 1)) < 1e-15, "double sum");
    for (size_t k = 0; k < i.size(); ++k) expect(i[k] == (int64_t{1} << 40) * 10 + 4 * static_cast<int64_t>(k), "int64 sum");
  });
  EXPECT_EQ(test::failures(r), "");
}

TEST(GlooCollectives, AllToAllVWithZeroCountPeersMatchesReference) {
  auto r = with_world(4, [](ProcessGroup& g) {
    auto& w = *g.world;
    const int n = w.size(), me = w.rank();
    for (int round = 0; round < 6; ++round) {
      std::vector<int64_t> send_counts(n);
      std::vector<float> send;
      for (int to = 0; to < n; ++to) {
        send_counts[to] = count_of(me, to, round);
        for (int64_t i = 0; i < send_counts[to]; ++i) send.push_back(value_of(me, to, i));
      }
      if (round == 5) {  // this rank sends nothing at all and (rank 2) receives nothing at all
        std::fill(send_counts.begin(), send_counts.end(), 0);
        send.clear();
      }
      std::vector<int64_t> recv_counts = w.exchange_counts(send_counts);
      std::vector<float> recv(static_cast<size_t>(std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0})), -1.0f);
      w.all_to_all_v(send.data(), send_counts, recv.data(), recv_counts, sizeof(float));
      size_t pos = 0;
      for (int from = 0; from < n; ++from) {
        const int64_t expected_count = round == 5 ? 0 : count_of(from, me, round);
        expect(recv_counts[from] == expected_count, "exchanged count");
        for (int64_t i = 0; i < expected_count; ++i) expect(recv[pos++] == value_of(from, me, i), "all_to_all_v payload");
      }
      expect(pos == recv.size(), "received size");
    }
  });
  EXPECT_EQ(test::failures(r), "");
}

// Blocks land where the receiver says, in any layout: here the sender lays its blocks out in
// reverse order with a gap after each, the receiver block-major (all peers' block 0, then block 1,
// …) with its own gaps, which stay untouched. Includes empty blocks and the block to itself.
TEST(GlooCollectives, AllToAllBlocksPlacesEveryBlockWhereTheReceiverAsks) {
  auto r = with_world(3, [](ProcessGroup& g) {
    auto& w = *g.world;
    const int n = w.size(), me = w.rank(), B = 3;
    auto count = [](int from, int to, int b) -> int64_t { return (from + 2 * to + b) % 4 == 0 ? 0 : (from + to + b) % 3 + 1; };
    auto value = [](int from, int to, int b, int64_t i) { return static_cast<float>(from * 1000 + to * 100 + b * 10 + i); };
    Communicator::Blocks out, in;
    std::vector<float> send;
    out.offset.assign(static_cast<size_t>(n * B), 0), out.count.assign(static_cast<size_t>(n * B), 0);
    for (int k = n * B - 1; k >= 0; --k) {  // reverse order, one unused element after each block
      const int to = k / B, b = k % B;
      out.offset[k] = static_cast<int64_t>(send.size());
      out.count[k] = count(me, to, b);
      for (int64_t i = 0; i < out.count[k]; ++i) send.push_back(value(me, to, b, i));
      send.push_back(-7.0f);
    }
    int64_t at = 0;
    in.offset.assign(static_cast<size_t>(n * B), 0), in.count.assign(static_cast<size_t>(n * B), 0);
    for (int b = 0; b < B; ++b)
      for (int from = 0; from < n; ++from) {
        in.offset[from * B + b] = at;
        in.count[from * B + b] = count(from, me, b);
        at += in.count[from * B + b] + 2;  // gap of two
      }
    std::vector<float> recv(static_cast<size_t>(at), -1.0f);
    w.all_to_all_blocks(send.data(), out, recv.data(), in, sizeof(float));
    std::vector<bool> written(recv.size(), false);
    for (int from = 0; from < n; ++from)
      for (int b = 0; b < B; ++b)
        for (int64_t i = 0; i < in.count[from * B + b]; ++i) {
          const size_t pos = static_cast<size_t>(in.offset[from * B + b] + i);
          expect(recv[pos] == value(from, me, b, i), "block payload");
          written[pos] = true;
        }
    for (size_t pos = 0; pos < recv.size(); ++pos) expect(written[pos] || recv[pos] == -1.0f, "gap untouched");
    // A block to itself with different counts on the two sides is refused before anything moves.
    Communicator::Blocks bad = in;
    bad.count[me * B] += 1;
    try {
      w.all_to_all_blocks(send.data(), out, recv.data(), bad, sizeof(float));
      expect(false, "mismatched self block accepted");
    } catch (const moe::Error& e) {
      expect(std::string(e.what()).find("to itself") != std::string::npos, std::string("message: ") + e.what());
    }
  });
  EXPECT_EQ(test::failures(r), "");
}

TEST(GlooCollectives, AllGatherBroadcastSendRecvBarrier) {
  auto r = with_world(3, [](ProcessGroup& g) {
    auto& w = *g.world;
    const int n = w.size(), me = w.rank();
    int64_t mine[2] = {me * 10, me * 10 + 1};
    std::vector<int64_t> all(2 * n, -1);
    w.all_gather(mine, all.data(), sizeof(mine));
    for (int p = 0; p < n; ++p) expect(all[2 * p] == p * 10 && all[2 * p + 1] == p * 10 + 1, "all_gather");
    std::vector<double> b(5, me == 1 ? 3.5 : 0.0);
    w.broadcast(b.data(), b.size() * sizeof(double), 1);
    for (double v : b) expect(v == 3.5, "broadcast");
    // A ring of send/recv: 0 → 1 → 2 → 0.
    std::vector<int> out(100, me), in(100, -1);
    if (me % 2 == 0) {
      w.send(out.data(), out.size() * sizeof(int), (me + 1) % n, 7);
      w.recv(in.data(), in.size() * sizeof(int), (me + n - 1) % n, 7);
    } else {
      w.recv(in.data(), in.size() * sizeof(int), (me + n - 1) % n, 7);
      w.send(out.data(), out.size() * sizeof(int), (me + 1) % n, 7);
    }
    for (int v : in) expect(v == (me + n - 1) % n, "send/recv");
    w.barrier();
  });
  EXPECT_EQ(test::failures(r), "");
}

// The ring all-gather and reduce-scatter of sequence parallelism, on 1 to 4 ranks with uneven
// chunks and an empty one (a batch smaller than the group): against the float64 reference.
TEST(GlooCollectives, RingAllGatherAndReduceScatterWithUnevenChunksMatchReference) {
  for (int n : {1, 2, 3, 4}) {
    auto r = with_world(n, [](ProcessGroup& g) {
      auto& w = *g.world;
      const int size = w.size(), me = w.rank();
      std::vector<int64_t> counts;
      for (int p = 0; p < size; ++p) counts.push_back(p == 1 ? 0 : 5 + 3 * p);
      const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
      auto value = [](int rank, int64_t i) { return static_cast<float>(std::sin(0.37 * double(i) + rank)) * (rank + 1); };
      std::vector<int64_t> at(static_cast<size_t>(size) + 1, 0);
      for (int p = 0; p < size; ++p) at[static_cast<size_t>(p) + 1] = at[static_cast<size_t>(p)] + counts[static_cast<size_t>(p)];
      // all_gather_v: every rank's chunk, in rank order.
      std::vector<float> mine(static_cast<size_t>(counts[static_cast<size_t>(me)]));
      for (size_t i = 0; i < mine.size(); ++i) mine[i] = value(me, at[static_cast<size_t>(me)] + static_cast<int64_t>(i));
      std::vector<float> all(static_cast<size_t>(total), -1.0f);
      w.all_gather_v(mine.data(), all.data(), counts);
      for (int p = 0; p < size; ++p)
        for (int64_t i = at[static_cast<size_t>(p)]; i < at[static_cast<size_t>(p) + 1]; ++i)
          expect(all[static_cast<size_t>(i)] == value(p, i), "all_gather_v element " + std::to_string(i));
      // reduce_scatter_sum_v: every rank's whole tensor summed, this rank's chunk kept.
      std::vector<float> send(static_cast<size_t>(total));
      for (int64_t i = 0; i < total; ++i) send[static_cast<size_t>(i)] = value(me, i);
      std::vector<float> got(mine.size(), -1.0f);
      w.reduce_scatter_sum_v(send.data(), got.data(), counts);
      for (size_t i = 0; i < got.size(); ++i) {
        const int64_t at_i = at[static_cast<size_t>(me)] + static_cast<int64_t>(i);
        double ref = 0;
        for (int p = 0; p < size; ++p) ref += double(value(p, at_i));
        expect(std::abs(double(got[i]) - ref) <= 1e-6 * (1 + std::abs(ref)), "reduce_scatter_sum_v element " + std::to_string(at_i));
      }
      bool refused = false;  // counts for the wrong number of ranks: a clear error, not a hang
      try {
        w.all_gather_v(mine.data(), all.data(), std::vector<int64_t>(static_cast<size_t>(size) + 1, 0));
      } catch (const moe::Error& e) {
        refused = std::string(e.what()).find("counts for") != std::string::npos;
      }
      expect(refused, "all_gather_v with wrong counts");
    });
    EXPECT_EQ(test::failures(r), "") << n << " ranks";
  }
}

TEST(GlooCollectives, AsyncAllToAllOverlapsAndKeepsOrder) {
  auto r = with_world(4, [](ProcessGroup& g) {
    auto& w = *g.world;
    const int n = w.size(), me = w.rank();
    const int64_t per_peer = 1 << 16;
    std::vector<int64_t> counts(n, per_peer);
    std::vector<float> send_a(n * per_peer), send_b(n * per_peer), recv_a(n * per_peer), recv_b(n * per_peer);
    for (int to = 0; to < n; ++to)
      for (int64_t i = 0; i < per_peer; ++i) {
        send_a[to * per_peer + i] = value_of(me, to, i);
        send_b[to * per_peer + i] = -value_of(me, to, i);
      }
    // Two chunks in flight, a synchronous all-reduce queued behind them, then the waits.
    CommHandle ha = w.all_to_all_v_async(send_a.data(), counts, recv_a.data(), counts, sizeof(float));
    CommHandle hb = w.all_to_all_v_async(send_b.data(), counts, recv_b.data(), counts, sizeof(float));
    double s = 1.0;
    w.all_reduce_sum(&s, 1);  // must run after both (same order on every rank)
    expect(ha.ready() && hb.ready(), "sync call ran behind the async ones");
    ha.wait();
    hb.wait();
    expect(s == n, "all_reduce after async");
    for (int from = 0; from < n; ++from)
      for (int64_t i = 0; i < per_peer; i += 997) {
        expect(recv_a[from * per_peer + i] == value_of(from, me, i), "async chunk a");
        expect(recv_b[from * per_peer + i] == -value_of(from, me, i), "async chunk b");
      }
  });
  EXPECT_EQ(test::failures(r), "");
}

// run_async_job: a job of collectives on another group runs on the comm thread behind the async
// work submitted before it; a job's error comes back from wait() naming the rank, group and job.
TEST(GlooCollectives, AsyncJobRunsInOrderAndNamesTheRankOnError) {
  auto r = with_world(2, [](ProcessGroup& g) {
    auto& w = *g.world;
    auto pair = w.sub_group({1, 0}, "pair");
    const int me = w.rank();
    std::vector<int64_t> ones(2, 1), send{10 * me, 10 * me + 1}, recv(2, -1);
    CommHandle a2a = w.all_to_all_v_async(send.data(), ones, recv.data(), ones, sizeof(int64_t));
    int64_t seen = -2, sum = me + 1;
    CommHandle job = w.run_async_job("test job", [&] {
      seen = recv[1 - me];  // the all-to-all before it has finished
      pair->all_reduce_sum(&sum, 1);
    });
    CommHandle bad = w.run_async_job("failing job", [] { throw std::runtime_error("boom"); });
    job.wait();
    a2a.wait();
    expect(seen == 10 * (1 - me) + me, "the job ran before the all-to-all submitted ahead of it finished");
    expect(sum == 3, "the job's all-reduce on the sub-group");
    try {
      bad.wait();
    } catch (const moe::Error& e) {
      const std::string msg = e.what();
      expect(msg.find("rank " + std::to_string(me)) == 0 && msg.find("failing job") != std::string::npos &&
                 msg.find("boom") != std::string::npos,
             "unexpected message: " + msg);
      return;
    }
    throw moe::Error("the failing job's wait() did not throw");
  });
  EXPECT_EQ(test::failures(r), "");
}

TEST(GlooCollectives, LayoutSubGroupsReduceOverTheRightRanks) {
  // dp = 2 × ep = 2 on 2 virtual nodes of 2: ep groups {0,1},{2,3}; expert-dp {0,2},{1,3};
  // dense-dp = world; hierarchical intra = node peers, inter = same local index.
  auto r = with_world(4, [](ProcessGroup& g) {
    const moe::RankLayout layout = moe::make_rank_layout(1, 2, 2, 1, 2);
    CommGroups groups = make_comm_groups(*g.world, layout);
    const int me = g.world->rank();
    auto sum_of_ranks = [&](Communicator& c) {
      int64_t v = me;
      c.all_reduce_sum(&v, 1);
      return v;
    };
    const int ep_base = me / 2 * 2;
    expect(groups.ep->size() == 2 && groups.ep->rank() == me % 2, "ep rank");
    expect(sum_of_ranks(*groups.ep) == ep_base + ep_base + 1, "ep sum");
    expect(sum_of_ranks(*groups.expert_dp) == (me % 2) + (me % 2) + 2, "expert_dp sum");
    expect(sum_of_ranks(*groups.dense_dp) == 6, "dense_dp sum");
    expect(groups.ep_intra->world_ranks() == std::vector<int>({ep_base, ep_base + 1}), "intra members");
    expect(groups.ep_inter->size() == 1, "inter: one node per ep group here");
    // A nested all-to-all inside the EP group only.
    std::vector<int64_t> counts(2, 1), out = {me * 10, me * 10 + 1}, in(2, -1);
    groups.ep->all_to_all_v(out.data(), counts, in.data(), counts, sizeof(int64_t));
    expect(in[0] == ep_base * 10 + me % 2 && in[1] == (ep_base + 1) * 10 + me % 2, "ep all_to_all_v");
  });
  EXPECT_EQ(test::failures(r), "");
}

// 4-D layouts (issue 15): every communicator of a rank holds exactly the ranks of its layout group,
// checked by all-reducing a bit per member (an exact membership test) in 8 real processes.
TEST(GlooCollectives, FourDimensionalLayoutsGetTheirGroupCommunicators) {
  for (auto [tp, ep, dp, pp] : {std::array<int64_t, 4>{2, 2, 2, 1}, {2, 1, 2, 2}, {1, 2, 2, 2}}) {
    auto r = with_world(8, [&](ProcessGroup& g) {
      const moe::RankLayout layout = moe::make_rank_layout(tp, ep, dp, pp, 4);
      CommGroups groups = make_comm_groups(*g.world, layout);
      const int me = g.world->rank();
      auto members = [&](Communicator* c) {
        int64_t mask = int64_t{1} << me;
        if (c) c->all_reduce_sum(&mask, 1);
        return mask;
      };
      auto mask_of = [](const moe::RankGroup& grp) {
        int64_t m = 0;
        for (int64_t q : grp) m |= int64_t{1} << q;
        return m;
      };
      expect((groups.tp != nullptr) == (tp > 1) && (groups.pp != nullptr) == (pp > 1), "tp/pp built iff > 1");
      if (tp > 1) expect(members(groups.tp.get()) == mask_of(layout.group_of(layout.tp_groups, me)), "tp members");
      if (pp > 1) expect(members(groups.pp.get()) == mask_of(layout.group_of(layout.pp_groups, me)), "pp members");
      expect(members(groups.dp) == mask_of(layout.group_of(layout.dp_groups, me)), "dp members");
      expect(members(groups.ep.get()) == mask_of(layout.group_of(layout.ep_groups, me)), "ep members");
      expect(members(groups.dense_dp.get()) == mask_of(layout.group_of(layout.dense_dp_groups, me)), "dense_dp members");
    });
    EXPECT_EQ(test::failures(r), "") << tp << "x" << ep << "x" << dp << "x" << pp;
  }
}

TEST(GlooCollectives, HierarchicalGroupsFollowNodes) {
  // ep = 4 over 2 virtual nodes of 2: intra {0,1} / {2,3}, inter {0,2} / {1,3}.
  const moe::RankLayout layout = moe::make_rank_layout(1, 4, 1, 1, 2);
  moe::RankGroup intra, inter;
  hierarchical_groups(layout, 3, intra, inter);
  EXPECT_EQ(intra, (moe::RankGroup{2, 3}));
  EXPECT_EQ(inter, (moe::RankGroup{1, 3}));
  hierarchical_groups(layout, 0, intra, inter);
  EXPECT_EQ(intra, (moe::RankGroup{0, 1}));
  EXPECT_EQ(inter, (moe::RankGroup{0, 2}));
}

TEST(GlooCollectives, AMismatchedCallBecomesAnErrorNamingTheRank) {
  // Rank 1 leaves early: the others' collective must fail with a moe::Error naming their rank and
  // the operation (never an abort), within the timeout.
  const int port = test::free_port();
  auto r = test::fork_ranks(3, [&](int rank) {
    RankEnv env;
    env.rank = rank;
    env.world_size = 3;
    env.master_port = port;
    env.timeout = 3s;
    auto group = init_process_group(env);
    group->world->barrier();
    if (rank == 1) std::_Exit(0);
    std::vector<float> v(1 << 16, 1.0f);
    try {
      group->world->all_reduce_sum(v.data(), v.size());
    } catch (const moe::Error& e) {
      const std::string msg = e.what();
      if (msg.find("rank " + std::to_string(rank)) != 0 || msg.find("all_reduce") == std::string::npos)
        throw moe::Error("unexpected message: " + msg);
      std::_Exit(0);
    }
    throw moe::Error("all_reduce without rank 1 succeeded");
  }, 20);
  EXPECT_EQ(test::failures(r), "");
}
