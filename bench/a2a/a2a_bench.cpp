// Raw all-to-all bandwidth with P processes on this host (default 4): Gloo's own alltoallv versus
// the runtime's Communicator::all_to_all_v on the same bytes, timed in the same run. This is the
// baseline for the dispatcher's ≥ 90% target (issue 4). Prints a table.
//   a2a_bench [--procs P] [--iters N] [--mib-per-rank M ...]
// Bandwidth = bytes each rank sends to *other* ranks / time of one all-to-all (slowest rank).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <gloo/alltoallv.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>

#include "gloo_store_adapter.h"
#include "rendezvous.h"
#include "socket_util.h"

using namespace moe::rt::comm;
using Clock = std::chrono::steady_clock;

namespace {

int free_port() { return free_loopback_port(); }

struct Row {
  double mib, raw_ms, comm_ms;
};

// Max over ranks of a per-rank time, via the communicator.
double slowest(Communicator& world, double ms) {
  std::vector<double> all(static_cast<size_t>(world.size()));
  world.all_gather(&ms, all.data(), sizeof(double));
  return *std::max_element(all.begin(), all.end());
}

void rank_main(int rank, int procs, int port, int iters, const std::vector<double>& sizes, int result_fd) {
  RankEnv env;
  env.rank = rank;
  env.world_size = procs;
  env.master_port = port;
  env.timeout = std::chrono::seconds(60);
  auto group = init_process_group(env);
  Communicator& world = *group->world;
  // A separate raw Gloo context for gloo::alltoallv, connected through the same store.
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, procs);
  GlooStoreAdapter adapter(group->store, "bench/raw", env.timeout);
  context->connectFullMesh(adapter, device);

  std::vector<Row> rows;
  for (double mib : sizes) {
    const int64_t per_peer = static_cast<int64_t>(mib * (1 << 20) / sizeof(float) / procs);
    std::vector<float> send(static_cast<size_t>(per_peer * procs), 1.0f + rank), recv(send.size());
    std::vector<int64_t> counts(static_cast<size_t>(procs), per_peer);
    auto raw = [&] {
      gloo::AlltoallvOptions opts(context);
      opts.setInput(send.data(), counts);
      opts.setOutput(recv.data(), counts);
      gloo::alltoallv(opts);
    };
    auto ours = [&] { world.all_to_all_v(send.data(), counts, recv.data(), counts, sizeof(float)); };
    raw();
    ours();  // warm up both
    double raw_ms = 1e30, comm_ms = 1e30;
    // Interleave the two so drift on the shared machine hits both equally; keep the best.
    for (int i = 0; i < iters; ++i) {
      world.barrier();
      auto t0 = Clock::now();
      raw();
      raw_ms = std::min(raw_ms, slowest(world, std::chrono::duration<double, std::milli>(Clock::now() - t0).count()));
      world.barrier();
      t0 = Clock::now();
      ours();
      comm_ms = std::min(comm_ms, slowest(world, std::chrono::duration<double, std::milli>(Clock::now() - t0).count()));
    }
    rows.push_back({mib, raw_ms, comm_ms});
  }
  if (rank == 0 && ::write(result_fd, rows.data(), rows.size() * sizeof(Row)) < 0) std::perror("write");
  world.barrier();
}

}  // namespace

int main(int argc, char** argv) {
  int procs = 4, iters = 10;
  std::vector<double> sizes;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--procs" && i + 1 < argc) procs = std::atoi(argv[++i]);
    else if (a == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (a == "--mib-per-rank" && i + 1 < argc) sizes.push_back(std::atof(argv[++i]));
    else {
      std::fprintf(stderr, "usage: a2a_bench [--procs P] [--iters N] [--mib-per-rank M]...\n");
      return 2;
    }
  }
  if (sizes.empty()) sizes = {0.25, 1, 4, 16, 64};
  const int port = free_port();
  int pipe_fd[2];
  if (::pipe(pipe_fd) != 0) return 1;
  std::vector<pid_t> pids;
  for (int r = 0; r < procs; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 0;
      try {
        rank_main(r, procs, port, iters, sizes, pipe_fd[1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        code = 1;
      }
      std::_Exit(code);
    }
    pids.push_back(pid);
  }
  ::close(pipe_fd[1]);
  std::vector<Row> rows(sizes.size());
  size_t got = 0;
  char* p = reinterpret_cast<char*>(rows.data());
  for (ssize_t k; got < rows.size() * sizeof(Row) && (k = ::read(pipe_fd[0], p + got, rows.size() * sizeof(Row) - got)) > 0;)
    got += static_cast<size_t>(k);
  bool ok = got == rows.size() * sizeof(Row);
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (!ok) {
    std::fprintf(stderr, "a2a_bench: a rank failed\n");
    return 1;
  }
  std::printf("all-to-all, %d processes on 127.0.0.1, best of %d (slowest rank per run)\n", procs, iters);
  std::printf("%12s %14s %12s %12s %12s %12s %8s\n", "MiB/rank", "off-rank MiB", "gloo ms", "gloo GB/s", "comm ms",
              "comm GB/s", "comm/gloo");
  for (const Row& r : rows) {
    const double off = r.mib * (procs - 1) / procs;
    const double bytes = off * (1 << 20);
    std::printf("%12.2f %14.2f %12.3f %12.2f %12.3f %12.2f %7.0f%%\n", r.mib, off, r.raw_ms, bytes / r.raw_ms / 1e6,
                r.comm_ms, bytes / r.comm_ms / 1e6, 100.0 * r.raw_ms / r.comm_ms);
  }
  return 0;
}
