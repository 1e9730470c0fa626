// The launcher end to end, with comm_test_rank as the rank program: output routing, the metrics
// stream (checked by ../shared/tools/check-stream), and the faults of issue 4 — kill -9 of a rank,
// a rank that exits with an error, a rank that never arrives, a busy or unreachable master port,
// mismatched world sizes, SIGTERM forwarding.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "error.h"
#include "launcher.h"
#include "proc_util.h"

using namespace moe::rt::comm;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/comm_launcher_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<std::string> launch(int port, std::vector<std::string> extra) {
  std::vector<std::string> argv{COMM_TEST_RANK_EXE, "launch", "--master", "127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  for (char c : text) {
    if (c == '\n') out.push_back(line), line.clear();
    else line += c;
  }
  if (!line.empty()) out.push_back(line);
  return out;
}

nlohmann::json last_record(const std::string& out) {
  auto lines = lines_of(out);
  if (lines.empty()) return nlohmann::json::object();
  return nlohmann::json::parse(lines.back(), nullptr, false);
}

// Runs the contract checker on a stream; returns its exit code and output.
int check_stream(const std::string& stream, std::string& report) {
  TempDir dir;
  const fs::path file = dir.path / "stream.jsonl";
  std::ofstream(file) << stream;
  auto r = test::run_program({"/usr/bin/python3", CHECK_STREAM, file.string()}, {}, 30);
  report = r.out + r.err;
  return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
}

pid_t wait_for_pid_file(const fs::path& file, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(file);
    pid_t pid = 0;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status); }

}  // namespace

TEST(LauncherFlags, ParsesAndRemovesItsFlags) {
  std::vector<std::string> args{"train", "spec.json", "--nproc-per-node", "4", "--nnodes=2", "--node-rank", "1",
                                "--master", "10.1.2.3:2950", "--set", "parallel.ep=4", "--grace=1.5", "--job-id", "run-7-ab"};
  LauncherOptions o;
  take_launcher_flags(args, o);
  EXPECT_EQ(o.job_id, "run-7-ab");
  EXPECT_EQ(args, (std::vector<std::string>{"train", "spec.json", "--set", "parallel.ep=4"}));
  EXPECT_EQ(o.nproc_per_node, 4);
  EXPECT_EQ(o.nnodes, 2);
  EXPECT_EQ(o.node_rank, 1);
  EXPECT_EQ(o.master_host, "10.1.2.3");
  EXPECT_EQ(o.master_port, 2950);
  EXPECT_DOUBLE_EQ(o.grace_s, 1.5);
  EXPECT_EQ(o.world_size(), 8);
  std::vector<std::string> bad{"--nnodes", "2", "--node-rank", "2"};
  EXPECT_THROW(take_launcher_flags(bad, o), moe::Error);
  std::vector<std::string> bad_id{"--job-id", "two words"};
  EXPECT_THROW(take_launcher_flags(bad_id, o), moe::Error);
  std::vector<std::string> bad_master{"--master", "nohost"};
  EXPECT_THROW(take_launcher_flags(bad_master, o), moe::Error);
  LauncherOptions two;
  two.nproc_per_node = 2;
  try {
    check_launch_world(two, 4);
    FAIL() << "a world of 2 for a spec of 4 was accepted";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("= 2 processes, but the spec needs dp·tp·pp·ep = 4"), std::string::npos) << e.what();
  }
}

TEST(Launcher, CompletedRunPassesRank0StreamAndPrefixesOthers) {
  const int port = test::free_port();
  auto r = test::run_program(launch(port, {"--nproc-per-node", "4", "--comm-timeout", "20", "train", "5", "5"}), {}, 60);
  ASSERT_EQ(exit_code(r.status), 0) << r.err;
  std::string report;
  EXPECT_EQ(check_stream(r.out, report), 0) << report << r.out;
  const auto rec = last_record(r.out);
  EXPECT_EQ(rec.value("type", ""), "run_end");
  EXPECT_EQ(rec.value("status", ""), "completed");
  EXPECT_EQ(lines_of(r.out).size(), 7u) << r.out;  // run_start, 5 steps, run_end: nothing else
  for (int rank = 1; rank < 4; ++rank)
    EXPECT_NE(r.err.find("[rank " + std::to_string(rank) + "] joined"), std::string::npos) << r.err;
  const auto err_lines = lines_of(r.err);
  EXPECT_NE(std::find(err_lines.begin(), err_lines.end(), "joined"), err_lines.end()) << r.err;  // rank 0: untouched
  EXPECT_EQ(r.err.find("[rank 0]"), std::string::npos) << r.err;
}

TEST(Launcher, KillMinus9OfOneRankEndsTheJobWithAFailedRunEnd) {
  TempDir dir;
  const int port = test::free_port();
  std::chrono::steady_clock::time_point killed_at{};
  auto r = test::run_program(
      launch(port, {"--nproc-per-node", "4", "--comm-timeout", "30", "--grace", "2", "train", "2000", "20"}),
      {"COMM_TEST_DIR=" + dir.path.string()}, 60, [&](int) {
        const pid_t victim = wait_for_pid_file(dir.path / "rank2.pid", 20);
        ASSERT_GT(victim, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // mid-run
        ::kill(victim, SIGKILL);
        killed_at = std::chrono::steady_clock::now();
      });
  const double to_exit = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_NE(killed_at.time_since_epoch().count(), 0);
  EXPECT_LT(to_exit, 10.0) << "the job took too long to end after kill -9";
  EXPECT_NE(exit_code(r.status), 0);
  const auto rec = last_record(r.out);
  EXPECT_EQ(rec.value("type", ""), "run_end") << r.out;
  EXPECT_EQ(rec.value("status", ""), "failed");
  EXPECT_EQ(rec.value("failed_rank", -1), 2) << rec.dump();
  EXPECT_EQ(rec.value("signal", 0), 9) << rec.dump();
  EXPECT_NE(rec.value("reason", "").find("rank 2 was killed by signal 9 (SIGKILL)"), std::string::npos) << rec.dump();
  EXPECT_GT(rec.value("steps", 0), 0) << "the run was killed before any step";
  std::string report;
  EXPECT_EQ(check_stream(r.out, report), 0) << report;
  std::cerr << "kill -9 → launcher exit: " << to_exit << " s\nlauncher stderr:\n" << r.err;
}

TEST(Launcher, ARankExitingWithAnErrorNamesItsStatusAndMessage) {
  const int port = test::free_port();
  auto r = test::run_program(
      launch(port, {"--nproc-per-node", "3", "--comm-timeout", "20", "--grace", "2", "fail", "1", "3", "7", "50", "5"}),
      {}, 60);
  EXPECT_EQ(exit_code(r.status), 1);
  const auto rec = last_record(r.out);
  EXPECT_EQ(rec.value("status", ""), "failed") << r.out;
  EXPECT_EQ(rec.value("failed_rank", -1), 1);
  EXPECT_EQ(rec.value("exit_status", -1), 7);
  EXPECT_NE(rec.value("reason", "").find("rank 1 exited with status 7: rank 1: injected failure at step 3"),
            std::string::npos) << rec.dump();
  // Rank 0's own completed/failed record (if any) must not follow the launcher's.
  int run_ends = 0;
  for (const auto& line : lines_of(r.out)) run_ends += line.find("\"run_end\"") != std::string::npos;
  EXPECT_EQ(run_ends, 1) << r.out;
}

// With --metrics FILE rank 0's steps never pass through the launcher: the failed run_end must
// still name the last step, read from the file. Rank 1 fails at step 3, so all-reduce 2 finished,
// so rank 0 wrote step 1 (and step 2 unless it was stopped first): steps is the file's last step.
TEST(Launcher, FailedRunEndCountsTheStepsOfAMetricsFile) {
  TempDir dir;
  const fs::path file = dir.path / "metrics.jsonl";
  const int port = test::free_port();
  std::vector<std::string> argv{COMM_TEST_RANK_EXE, "launch", "--metrics", file.string(), "--master",
                                "127.0.0.1:" + std::to_string(port), "--nproc-per-node", "3", "--comm-timeout", "20",
                                "--grace", "2", "fail", "1", "3", "7", "50", "5"};
  auto r = test::run_program(argv, {}, 60);
  EXPECT_EQ(exit_code(r.status), 1) << r.err;
  EXPECT_EQ(r.out.find("\"step\""), std::string::npos) << "the stream went to stdout: " << r.out;
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const auto rec = last_record(text.str());
  EXPECT_EQ(rec.value("type", ""), "run_end") << text.str();
  EXPECT_EQ(rec.value("status", ""), "failed") << text.str();
  EXPECT_EQ(rec.value("failed_rank", -1), 1) << rec.dump();
  int64_t last_step = 0;
  for (const auto& line : lines_of(text.str())) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("type", "") == "step") last_step = j["step"].get<int64_t>();
  }
  EXPECT_GE(last_step, 1) << text.str();
  EXPECT_EQ(rec.value("steps", -1), last_step) << rec.dump();
  std::string report;
  EXPECT_EQ(check_stream(text.str(), report), 0) << report << text.str();
}

TEST(Launcher, MissingRanksTimeOutNamingThem) {
  const int port = test::free_port();
  // Node 0 of 2 is launched; node 1 (ranks 2, 3) never is.
  auto r = test::run_program(launch(port, {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "0",
                                           "--comm-timeout", "1.5", "--grace", "1", "train", "3", "5"}),
                             {}, 30);
  EXPECT_EQ(exit_code(r.status), 1);
  EXPECT_LT(r.seconds, 10.0);
  const auto rec = last_record(r.out);
  EXPECT_EQ(rec.value("status", ""), "failed") << r.out;
  EXPECT_NE(rec.value("reason", "").find("ranks 2, 3 never arrived"), std::string::npos) << rec.dump();
}

TEST(Launcher, BusyMasterPortIsAClearError) {
  // Hold the master port with a listening socket.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  auto r = test::run_program(launch(port, {"--nproc-per-node", "2", "--comm-timeout", "5", "--grace", "1", "train", "3", "5"}), {}, 30);
  ::close(fd);
  EXPECT_EQ(exit_code(r.status), 1);
  EXPECT_LT(r.seconds, 10.0);
  const auto rec = last_record(r.out);
  EXPECT_EQ(rec.value("failed_rank", -1), 0) << r.out << r.err;
  EXPECT_NE(rec.value("reason", "").find("master port 127.0.0.1:" + std::to_string(port) + " is busy"), std::string::npos)
      << rec.dump();
}

TEST(Launcher, UnreachableMasterIsAClearError) {
  const int port = test::free_port();  // nobody hosts the store there
  auto r = test::run_program(launch(port, {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1",
                                           "--comm-timeout", "1", "--grace", "1", "train", "3", "5"}),
                             {}, 30);
  EXPECT_EQ(exit_code(r.status), 1);
  EXPECT_NE(r.err.find("could not reach master 127.0.0.1:" + std::to_string(port) + " within 1 s"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << "only the node hosting rank 0 writes run_end";
}

TEST(Launcher, MismatchedWorldSizesAreRefused) {
  const int port = test::free_port();
  test::RunResult node1;
  // Node 0 believes in 2 nodes × 2 ranks; node 1 was started with 3 ranks per node.
  auto node0 = test::run_program(
      launch(port, {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "0", "--comm-timeout", "3", "--grace", "1",
                    "train", "3", "5"}),
      {}, 30, [&](int) {
        node1 = test::run_program(launch(port, {"--nproc-per-node", "3", "--nnodes", "2", "--node-rank", "1",
                                                "--comm-timeout", "3", "--grace", "1", "train", "3", "5"}),
                                  {}, 30);
      });
  EXPECT_EQ(exit_code(node1.status), 1);
  EXPECT_NE(node1.err.find("was started with world size 6 but the master (rank 0) has world size 4"), std::string::npos)
      << node1.err;
  EXPECT_EQ(exit_code(node0.status), 1);
  EXPECT_EQ(last_record(node0.out).value("status", ""), "failed") << node0.out;
}

// Two jobs on one master address: node 1 of another job (another --job-id) is refused by name,
// instead of its ranks joining this job's world; this job then fails on its own missing node.
TEST(Launcher, AnotherJobsNodeIsRefused) {
  const int port = test::free_port();
  test::RunResult node1;
  auto node0 = test::run_program(
      launch(port, {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "0", "--job-id", "alpha", "--comm-timeout", "3",
                    "--grace", "1", "train", "3", "5"}),
      {}, 30, [&](int) {
        node1 = test::run_program(launch(port, {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1", "--job-id", "beta",
                                                "--comm-timeout", "3", "--grace", "1", "train", "3", "5"}),
                                  {}, 30);
      });
  EXPECT_EQ(exit_code(node1.status), 1);
  EXPECT_NE(node1.err.find("belongs to job 'beta' but the master (rank 0) serves job 'alpha'"), std::string::npos) << node1.err;
  EXPECT_EQ(exit_code(node0.status), 1);
  EXPECT_EQ(last_record(node0.out).value("status", ""), "failed") << node0.out;
}

TEST(Launcher, SigtermIsForwardedAndTheRunIsCancelled) {
  TempDir dir;
  const int port = test::free_port();
  std::vector<pid_t> ranks;
  auto r = test::run_program(
      launch(port, {"--nproc-per-node", "2", "--comm-timeout", "30", "--grace", "2", "train", "2000", "20"}),
      {"COMM_TEST_DIR=" + dir.path.string()}, 60, [&](int launcher) {
        for (int i = 0; i < 2; ++i) ranks.push_back(wait_for_pid_file(dir.path / ("rank" + std::to_string(i) + ".pid"), 20));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        ::kill(launcher, SIGTERM);
      });
  EXPECT_EQ(exit_code(r.status), 128 + SIGTERM) << r.err;
  EXPECT_EQ(last_record(r.out).value("status", ""), "cancelled") << r.out;
  for (pid_t p : ranks) {
    ASSERT_GT(p, 0);
    EXPECT_NE(::kill(p, 0), 0) << "rank process " << p << " outlived the launcher";
  }
}
