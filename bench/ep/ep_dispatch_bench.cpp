// The expert-parallel dispatcher's all-to-all against a raw gloo::alltoallv moving the same bytes
// to the same peers, timed in the same run (issue 4: ≥ 90% of raw bandwidth with ep = 4).
//   ep_dispatch_bench [--procs P] [--tokens T] [--d D] [--experts E] [--top-k K] [--iters N]
// Each rank routes T random tokens (uniform top-k, seeded per rank) and runs the dispatcher's
// dispatch + combine; the dispatcher's own a2a timers (forward dispatch: the per-expert counts
// exchange, then the row exchange; forward combine: the row exchange) are compared with
// gloo::alltoallv on the exact per-peer element counts of that dispatch. The counts exchange is
// the dispatch's first collective: it absorbs the ranks' skew from routing and the local copy (in
// a training step: load imbalance), so it is reported on its own line as well as inside the
// whole dispatch. Times: slowest rank, best of N, interleaved.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <netinet/in.h>
#include <random>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <gloo/alltoallv.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>

#include "all_to_all_dispatcher.h"
#include "gloo_store_adapter.h"
#include "rendezvous.h"
#include "socket_util.h"

using namespace moe::rt;
using namespace moe::rt::comm;
using Clock = std::chrono::steady_clock;

namespace {

int free_port() { return free_loopback_port(); }

struct Result {
  double off_rank_mib = 0;  // rank 0's bytes to other ranks per exchange
  double raw_ms = 0, rows_ms = 0, count_ms = 0, dispatch_ms = 0, combine_ms = 0, dispatch_total_ms = 0;
};

double slowest(Communicator& world, double ms) {
  std::vector<double> all(static_cast<size_t>(world.size()));
  world.all_gather(&ms, all.data(), sizeof(double));
  return *std::max_element(all.begin(), all.end());
}

struct Options {
  int procs = 4, iters = 7;
  int64_t tokens = 8192, d = 512, experts = 8, top_k = 2;
};

Result rank_main(int rank, int port, const Options& o) {
  RankEnv env;
  env.rank = rank;
  env.world_size = o.procs;
  env.master_port = port;
  env.timeout = std::chrono::seconds(120);
  auto group = init_process_group(env);
  Communicator& world = *group->world;
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, o.procs);
  GlooStoreAdapter adapter(group->store, "bench/raw", env.timeout);
  context->connectFullMesh(adapter, device);

  // Uniform random top-k routing (distinct experts per token), every assignment kept.
  Assignments asg;
  asg.num_tokens = o.tokens;
  asg.num_experts = o.experts;
  asg.top_k = o.top_k;
  std::mt19937_64 rng(1000 + rank);
  std::vector<int32_t> perm(static_cast<size_t>(o.experts));
  for (int64_t t = 0; t < o.tokens; ++t) {
    for (int64_t e = 0; e < o.experts; ++e) perm[e] = static_cast<int32_t>(e);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t j = 0; j < o.top_k; ++j) {
      asg.token.push_back(static_cast<int32_t>(t));
      asg.expert.push_back(perm[j]);
    }
  }
  asg.route = asg.expert;
  asg.counts.assign(static_cast<size_t>(o.experts), 0);
  for (int32_t e : asg.expert) ++asg.counts[e];
  asg.dropped.assign(static_cast<size_t>(o.experts), 0);
  std::vector<float> x(static_cast<size_t>(o.tokens * o.d), 0.5f), y(x.size()), weight(asg.expert.size(), 0.5f);

  AllToAllDispatcher<float> dispatcher(world, o.experts);
  DispatchHandle<float> h;
  dispatcher.dispatch(asg, x.data(), o.d, h);  // warm-up; also gives the per-peer row counts
  // The same per-peer element counts for the raw all-to-all: rows to each peer × d.
  const int P = o.procs;
  const int64_t local = o.experts / P;
  std::vector<int64_t> send_counts(P, 0), recv_counts(P, 0);
  for (int p = 0; p < P; ++p)
    for (int64_t i = 0; i < local; ++i) send_counts[p] += h.counts[p * local + i] * o.d;
  recv_counts = world.exchange_counts(send_counts);
  int64_t send_total = 0, recv_total = 0, off_rank = 0;
  for (int p = 0; p < P; ++p) {
    send_total += send_counts[p], recv_total += recv_counts[p];
    if (p != rank) off_rank += send_counts[p];
  }
  std::vector<float> raw_send(static_cast<size_t>(send_total), 1.0f), raw_recv(static_cast<size_t>(recv_total));
  auto raw = [&] {
    gloo::AlltoallvOptions opts(context);
    opts.setInput(raw_send.data(), send_counts);
    opts.setOutput(raw_recv.data(), recv_counts);
    gloo::alltoallv(opts);
  };
  raw();
  std::vector<float> expert_out;
  Result r;
  r.off_rank_mib = static_cast<double>(off_rank) * sizeof(float) / (1 << 20);
  r.raw_ms = r.rows_ms = r.count_ms = r.dispatch_ms = r.combine_ms = r.dispatch_total_ms = 1e30;
  for (int it = 0; it < o.iters; ++it) {
    world.barrier();
    auto t0 = Clock::now();
    raw();
    r.raw_ms = std::min(r.raw_ms, slowest(world, std::chrono::duration<double, std::milli>(Clock::now() - t0).count()));
    world.barrier();
    t0 = Clock::now();
    dispatcher.dispatch(asg, x.data(), o.d, h);
    const double total = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    expert_out.assign(static_cast<size_t>(h.expert_rows() * o.d), 0.25f);
    std::fill(y.begin(), y.end(), 0.0f);
    world.barrier();  // like the raw exchange: start together, so rank skew is not timed as a2a
    dispatcher.combine(h, expert_out.data(), weight.data(), y.data());
    const A2ATimes& s = dispatcher.stats(h);
    r.dispatch_total_ms = std::min(r.dispatch_total_ms, slowest(world, total));
    r.dispatch_ms = std::min(r.dispatch_ms, slowest(world, s[kDispatchFwd].us / 1000.0));
    r.rows_ms = std::min(r.rows_ms, slowest(world, (s[kDispatchFwd].us - s[kDispatchFwd].count_us) / 1000.0));
    r.count_ms = std::min(r.count_ms, slowest(world, s[kDispatchFwd].count_us / 1000.0));
    r.combine_ms = std::min(r.combine_ms, slowest(world, s[kCombineFwd].us / 1000.0));
  }
  world.barrier();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoll(argv[++i]) : 0LL; };
    if (a == "--procs") o.procs = static_cast<int>(next());
    else if (a == "--iters") o.iters = static_cast<int>(next());
    else if (a == "--tokens") o.tokens = next();
    else if (a == "--d") o.d = next();
    else if (a == "--experts") o.experts = next();
    else if (a == "--top-k") o.top_k = next();
    else {
      std::fprintf(stderr, "usage: ep_dispatch_bench [--procs P] [--tokens T] [--d D] [--experts E] [--top-k K] [--iters N]\n");
      return 2;
    }
  }
  if (o.procs < 2 || o.experts % o.procs != 0 || o.top_k > o.experts || o.iters < 1) {
    std::fprintf(stderr, "ep_dispatch_bench: need procs ≥ 2 dividing experts, top_k ≤ experts\n");
    return 2;
  }
  const int port = free_port();
  int fds[2];
  if (::pipe(fds) != 0) return 1;
  std::vector<pid_t> pids;
  for (int r = 0; r < o.procs; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 0;
      try {
        const Result res = rank_main(r, port, o);
        if (r == 0 && ::write(fds[1], &res, sizeof res) != static_cast<ssize_t>(sizeof res)) code = 1;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        code = 1;
      }
      std::_Exit(code);
    }
    pids.push_back(pid);
  }
  ::close(fds[1]);
  Result res;
  const bool got = ::read(fds[0], &res, sizeof res) == static_cast<ssize_t>(sizeof res);
  bool ok = got;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (!ok) {
    std::fprintf(stderr, "ep_dispatch_bench: a rank failed\n");
    return 1;
  }
  const double mb = res.off_rank_mib * (1 << 20) / 1e6;
  std::printf("ep dispatcher vs raw gloo::alltoallv, %d processes on 127.0.0.1, T %lld d %lld E %lld k %lld, best of %d\n",
              o.procs, static_cast<long long>(o.tokens), static_cast<long long>(o.d), static_cast<long long>(o.experts),
              static_cast<long long>(o.top_k), o.iters);
  std::printf("%-34s %10s %10s %10s\n", "exchange (rank 0 off-rank MiB)", "ms", "GB/s", "vs raw");
  std::printf("%-34s %10.3f %10.3f %9.0f%%\n", ("raw gloo::alltoallv (" + std::to_string(res.off_rank_mib).substr(0, 5) + ")").c_str(),
              res.raw_ms, mb / res.raw_ms, 100.0);
  std::printf("%-34s %10.3f %10.3f %9.0f%%\n", "dispatcher a2a, dispatch fwd rows", res.rows_ms, mb / res.rows_ms,
              100.0 * res.raw_ms / res.rows_ms);
  std::printf("%-34s %10.3f %10.3f %9.0f%%\n", "dispatcher a2a, combine fwd", res.combine_ms, mb / res.combine_ms,
              100.0 * res.raw_ms / res.combine_ms);
  std::printf("%-34s %10.3f %10.3f %9.0f%%\n", "dispatcher a2a, dispatch fwd all", res.dispatch_ms, mb / res.dispatch_ms,
              100.0 * res.raw_ms / res.dispatch_ms);
  std::printf("%-34s %10.3f %10s %10s\n", "  its counts exchange (skew wait)", res.count_ms, "-", "-");
  std::printf("%-34s %10.3f %10.3f %9.0f%%\n", "dispatch() whole (permute+copy)", res.dispatch_total_ms,
              mb / res.dispatch_total_ms, 100.0 * res.raw_ms / res.dispatch_total_ms);
  return 0;
}
