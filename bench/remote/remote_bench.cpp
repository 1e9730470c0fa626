// Remote benchmark over the two local sshd "nodes" of tests/remote/sshd-fixture:
//   1. deploy a bundle directory to both nodes: cold (upload) and warm (verified, skipped)
//   2. a 2-node job with a warm deploy cache: time from launch() to node 0's first step record
// usage: remote_bench FIXTURE_DIR BUNDLE_DIR FAKE_RUNTIME   (bench/remote/run sets these up)
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "bundle.h"
#include "deploy.h"
#include "error.h"
#include "job_controller.h"
#include "ssh_session.h"

using namespace moe::remote;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

static double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: remote_bench FIXTURE_DIR BUNDLE_DIR FAKE_RUNTIME\n");
    return 2;
  }
  const fs::path fixture = argv[1], bundle_dir = argv[2], fake = argv[3];
  try {
    ConnectOptions o;
    o.known_hosts_file = (fixture / "bench_known_hosts").string();
    o.unknown_host = UnknownHostPolicy::accept_new;  // fresh test servers
    o.process_config = false;
    o.use_agent = false;
    std::vector<HostEntry> hosts(2);
    std::ifstream ports(fixture / "ports");  // picked free by `sshd-fixture start`
    for (int i = 0; i < 2; ++i) {
      hosts[i].host = "127.0.0.1";
      ports >> hosts[i].port;
      hosts[i].key = (fixture / "client_key").string();
      fs::remove_all(fixture / (i == 0 ? "node-a" : "node-b") / "home" / ".cache" / "moe-studio");
    }
    auto t_scan = Clock::now();
    Bundle bundle = scan_bundle(bundle_dir);
    const double scan_ms = ms_since(t_scan);
    std::printf("| step | node | MiB | ms |\n|---|---|---|---|\n");
    std::printf("| scan + hash bundle (%zu files) | local | %.1f | %.0f |\n", bundle.files.size(),
                static_cast<double>(bundle.total_bytes) / (1 << 20), scan_ms);
    for (int i = 0; i < 2; ++i) {
      auto s = SshSession::connect(hosts[i], o);
      DeployResult cold = deploy_bundle(*s, bundle);
      DeployResult warm = deploy_bundle(*s, bundle);
      if (!cold.uploaded || warm.uploaded) throw moe::Error("unexpected deploy outcome");
      std::printf("| deploy, cold (upload + verify) | %d | %.1f | %.0f |\n", i,
                  static_cast<double>(cold.bytes) / (1 << 20), cold.seconds * 1000);
      std::printf("| deploy, warm (verify, skip) | %d | 0 | %.0f |\n", i, warm.seconds * 1000);
    }
    // Launch → first step, warm cache (the fake runtime bundle is deployed by the first run).
    fs::path fake_bundle = fixture / "bench-fake-bundle";
    fs::create_directories(fake_bundle);
    fs::copy_file(fake, fake_bundle / "moe-runtime", fs::copy_options::overwrite_existing);
    std::vector<double> first_step;
    for (int run = 0; run < 4; ++run) {
      JobPlan p;
      p.job_id = "bench-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-" +
                 std::to_string(run);
      p.hosts = hosts;
      p.connect = o;
      p.bundle = fake_bundle;
      p.command = [](const NodeContext& c) {
        return std::vector<std::string>{c.bundle_dir + "/moe-runtime", "--node-rank", std::to_string(c.node_rank),
                                        "--steps", "3", "--interval-ms", "10"};
      };
      std::mutex mu;
      std::condition_variable cv;
      double t_first = -1;
      auto t0 = Clock::now();
      JobEvents e;
      e.on_metrics_line = [&](std::string_view line, uint64_t) {
        std::lock_guard lock(mu);
        if (t_first < 0 && line.find("\"type\":\"step\"") != std::string_view::npos) {
          t_first = ms_since(t0);
          cv.notify_all();
        }
      };
      JobController job(p, e);
      t0 = Clock::now();
      job.launch();
      job.wait_for(std::chrono::seconds(30));
      if (job.state() != JobState::completed) throw moe::Error("bench job " + std::string(to_string(job.state())) + ": " + job.reason());
      if (run > 0) first_step.push_back(t_first);  // run 0 fills the deploy cache
    }
    std::sort(first_step.begin(), first_step.end());
    std::printf("| 2-node job, launch() → first step (warm cache, median of %zu) | 0+1 | - | %.0f |\n",
                first_step.size(), first_step[first_step.size() / 2]);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "remote_bench: %s\n", ex.what());
    return 1;
  }
  return 0;
}
