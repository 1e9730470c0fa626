// The Slurm driver the login node runs for `moe run --slurm` (resources/slurm/moe-slurm-job):
// real processes, with the Slurm stand-ins of slurm-standins/ (a test fixture that runs the job on
// this machine with Slurm's observable behaviour) first on PATH. MOE_SLURM_BIN=system runs the
// same tests against the machine's real Slurm instead (one node; what docs/remote.md reports).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sha256.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool real_slurm() {
  const char* v = std::getenv("MOE_SLURM_BIN");
  return v && std::string(v) == "system";
}

struct Driver {
  fs::path dir;
  pid_t pid = -1;
  int status = -1;

  // Starts moe-slurm-job in `dir` with the fake runtime; stdout → out.jsonl, stderr → err.txt.
  void start(int nodes, const std::vector<std::string>& extra, const std::vector<std::string>& runtime_args) {
    fs::create_directories(dir);
    std::vector<std::string> a = {MOE_SLURM_DRIVER, "--job-dir", dir.string(), "--nodes", std::to_string(nodes),
                                  "--nproc-per-node", "1", "--master-port", "29611", "--poll-s", "0.2"};
    if (!real_slurm()) a.insert(a.end(), {"--slurm-bin", MOE_SLURM_STANDINS});
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.push_back(MOE_FAKE_RUNTIME);
    a.insert(a.end(), runtime_args.begin(), runtime_args.end());
    pid = ::fork();
    if (pid == 0) {
      ::setenv("MOE_SLURM_FIXTURE", (dir.parent_path() / "slurm-state").c_str(), 1);
      if (!std::freopen((dir / "out.jsonl").c_str(), "w", stdout) || !std::freopen((dir / "err.txt").c_str(), "w", stderr))
        _exit(126);
      if (::chdir(dir.c_str()) != 0) _exit(126);
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
  }
  int wait() {
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string err() const { return slurp(dir / "err.txt"); }
  std::string out() const { return slurp(dir / "out.jsonl"); }
};

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("moe-slurm-test-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

}  // namespace

TEST(SlurmDriver, SubmitsRelaysNodeZerosStreamAndEndsWithTheJob) {
  const fs::path tmp = temp_dir("ok");
  const int nodes = real_slurm() ? 1 : 2;
  Driver d{tmp / "job 'q' $x"};
  const std::string marker = (tmp / "pwned").string();
  const std::string tag = "a'b \"c\" $(touch " + marker + ") `touch " + marker + "`";
  d.start(nodes, {"--time", "00:05:00", "--job-name", "moe-test"}, {"--steps", "5", "--interval-ms", "20", "--tag", tag});
  ASSERT_EQ(d.wait(), 0) << d.err();
  const std::string out = d.out();
  // Node 0's stream, whole: run_start, five steps, in order, and only node 0's.
  EXPECT_NE(out.find("\"node_rank\":0,\"nnodes\":" + std::to_string(nodes)), std::string::npos) << out;
  // The rendezvous: the allocation's first host (the stand-ins' 127.0.0.1, a real node's name).
  EXPECT_NE(out.find(":29611\""), std::string::npos) << out;
  // Every node's runtime gets the allocation's job id, so the rendezvous refuses another job's ranks.
  EXPECT_NE(out.find("\"job_id\":\"slurm-"), std::string::npos) << out;
  EXPECT_NE(out.find("\"step\":5"), std::string::npos) << out;
  EXPECT_EQ(out.find("\"node_rank\":1"), std::string::npos) << "another node's stream leaked";
  // The hostile argument reached the runtime as one word, and ran nothing.
  EXPECT_NE(out.find(moe::remote::sha256_hex(tag)), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(marker));
  // Slurm's states on stderr; the job id kept; the batch script as submitted.
  const std::string err = d.err();
  EXPECT_NE(err.find("slurm: submitted batch job "), std::string::npos) << err;
  EXPECT_NE(err.find("ended COMPLETED (exit code 0:0)"), std::string::npos) << err;
  EXPECT_FALSE(slurp(d.dir / "slurm_job_id").empty());
  const std::string batch = slurp(d.dir / "batch.sh");
  EXPECT_NE(batch.find("#SBATCH --nodes=" + std::to_string(nodes) + "\n"), std::string::npos) << batch;
  EXPECT_NE(batch.find("#SBATCH --time=00:05:00\n"), std::string::npos) << batch;
  EXPECT_NE(batch.find("#SBATCH --job-name=moe-test\n"), std::string::npos) << batch;
  EXPECT_EQ(batch.find("--partition"), std::string::npos) << "no partition asked, none written";
  fs::remove_all(tmp);
}

TEST(SlurmDriver, AFailedJobFailsWithItsStateAndTheNodesLastLines) {
  const fs::path tmp = temp_dir("fail");
  Driver d{tmp / "job"};
  d.start(1, {}, {"--no-such-option"});  // the fake runtime exits 2 on it
  EXPECT_EQ(d.wait(), 1);
  const std::string err = d.err();
  EXPECT_NE(err.find("ended FAILED (exit code 2:0)"), std::string::npos) << err;
  EXPECT_NE(err.find("slurm: log-0: fake-runtime: unknown argument --no-such-option"), std::string::npos) << err;
  fs::remove_all(tmp);
}

TEST(SlurmDriver, SigtermCancelsTheJobAndNoProcessIsLeft) {
  const fs::path tmp = temp_dir("cancel");
  Driver d{tmp / "job"};
  d.start(1, {}, {"--steps", "100000", "--interval-ms", "50"});
  ASSERT_TRUE(wait_until([&] { return d.err().find("RUNNING") != std::string::npos && d.out().find("\"step\":3") != std::string::npos; },
                         60s))
      << d.err();
  const int runtime_pid = std::atoi(slurp(d.dir / "fake.pid").c_str());
  ASSERT_GT(runtime_pid, 0);
  ASSERT_EQ(::kill(runtime_pid, 0), 0) << "the job's runtime should be running";
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(d.pid, SIGTERM);
  EXPECT_EQ(d.wait(), 143) << d.err();
  std::printf("[ slurm ] cancelled in %.2f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_NE(d.err().find("ended CANCELLED"), std::string::npos) << d.err();
  EXPECT_TRUE(wait_until([&] { return ::kill(runtime_pid, 0) != 0; }, 10s)) << "the runtime outlived scancel";
  fs::remove_all(tmp);
}
