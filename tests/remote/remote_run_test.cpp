// End to end `moe run --hosts`: the real `moe` CLI launches the real moe-runtime (bundled by
// scripts/bundle-runtime) over SSH on the two sshd "nodes" of sshd-fixture as a 2-node × 2-rank
// expert-parallel CPU job (ep = 4, a tiny model), records it into SQLite, and is checked against
// the same job launched locally; plus reattach after a killed client, a killed node, a killed
// rank, Ctrl-C, and refusals (unknown host key, slots that do not fit the spec).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.h"
#include "remote_fixture.h"
#include "run_reader.h"
#include "run_store.h"
#include "sqlite_db.h"

namespace moe::remote::test {
namespace {

using namespace std::chrono_literals;

// The tiny ep = 4 job: 2 layers, 8 experts, 32-token sequences, a token of validation data.
std::vector<std::string> tiny_sets(int steps) {
  return {"--set", "parallel.ep=4", "--set", "train.steps=" + std::to_string(steps), "--set", "model.n_layers=2",
          "--set", "model.seq_len=32", "--set", "model.d_model=64", "--set", "model.moe.d_expert=64",
          "--set", "train.data.val_fraction=0.0005"};
}

// Loss per step of a stream's `step` records.
std::map<int64_t, double> losses_of(const std::string& jsonl);

struct Proc {
  pid_t pid = -1;
  fs::path out;  // stdout + stderr
};

Proc spawn(const std::vector<std::string>& argv, const fs::path& out) {
  Proc p;
  p.out = out;
  p.pid = ::fork();
  if (p.pid == 0) {
    FILE* f = std::fopen(out.c_str(), "w");
    if (f) {
      ::dup2(::fileno(f), 1);
      ::dup2(::fileno(f), 2);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    _exit(127);
  }
  return p;
}

// Exit status (128+signal when killed), or -1 when still running after `timeout`.
int wait_exit(const Proc& p, std::chrono::milliseconds timeout) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(p.pid, &st, WNOHANG);
    if (r == p.pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (std::chrono::steady_clock::now() - t0 > timeout) return -1;
    std::this_thread::sleep_for(50ms);
  }
}

class RemoteRun : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = temp_dir("run");
    db_ = (tmp_ / "runs.sqlite").string();
    hosts_ = (tmp_ / "hosts").string();
    const std::string key = (fixture_dir() / "client_key").string();
    write_file(hosts_, "127.0.0.1 slots=2 port=" + std::to_string(node_port(0)) + " key=" + key + "\n127.0.0.1 slots=2 port=" + std::to_string(node_port(1)) + " key=" + key + "\n");
    known_hosts_ = trusted_options(tmp_).known_hosts_file;
  }
  void TearDown() override {
    // Whatever this test's jobs left running on the nodes goes (wrapper, launcher and ranks).
    if (fs::exists(db_)) {
      std::vector<int64_t> runs;
      try {
        store::Db db(db_, store::Db::Mode::read_only);
        store::Stmt q(db, "SELECT run_id FROM remote_runs");
        while (q.step()) runs.push_back(q.col_int(0));
      } catch (const moe::Error&) {  // a store that never got its schema holds no job
      }
      for (int64_t run : runs) {
        for (int n = 0; n < 2; ++n) {
          for (pid_t pid : live_job_processes(n, run, false)) ::kill(pid, SIGKILL);
        }
      }
    }
    fs::remove_all(tmp_);
  }

  // argv of `moe run` with the test's store, hostfile, trusted known_hosts and an empty ssh config.
  std::vector<std::string> moe(std::vector<std::string> extra, int port) const {
    std::vector<std::string> a = {MOE_CLI, "run"};
    a.insert(a.end(), extra.begin(), extra.end());
    for (const std::string& s : {std::string("--db"), db_, std::string("--hosts"), hosts_, std::string("--known-hosts"),
                                 known_hosts_, std::string("--ssh-config"), (fixture_dir() / "ssh_config").string(),
                                 std::string("--master-port"), std::to_string(port)}) {
      a.push_back(s);
    }
    return a;
  }
  // The losses of the same job launched locally: `procs` ranks of moe-runtime on one node.
  std::map<int64_t, double> train_locally(const std::vector<std::string>& sets, int procs, int port,
                                          const std::string& name) {
    std::vector<std::string> local = {MOE_RUNTIME_EXE, "train", MOE_TINY_SPEC};
    local.insert(local.end(), sets.begin(), sets.end());
    for (const std::string& s : {std::string("--set"), "cluster.nodes.0.slots=" + std::to_string(procs),
                                 std::string("--nproc-per-node"), std::to_string(procs), std::string("--master"),
                                 "127.0.0.1:" + std::to_string(port), std::string("--metrics"),
                                 (tmp_ / (name + ".jsonl")).string()})
      local.push_back(s);
    Proc lp = spawn(local, tmp_ / (name + ".out"));
    EXPECT_EQ(wait_exit(lp, 300s), 0) << read_file(lp.out);
    return losses_of(read_file(tmp_ / (name + ".jsonl")));
  }
  std::vector<std::string> launch_args(int steps, int port) const {
    std::vector<std::string> e = {MOE_TINY_SPEC};
    for (const auto& s : tiny_sets(steps)) e.push_back(s);
    return moe(e, port);
  }

  int64_t latest_run() {
    store::Db db(db_, store::Db::Mode::read_only);
    store::Stmt q(db, "SELECT max(id) FROM runs");
    return q.step() && !q.is_null(0) ? q.col_int(0) : 0;
  }
  store::RunInfo info(int64_t run) { return store::RunReader(db_).run(run); }
  int64_t count(const std::string& table, int64_t run) {
    store::Db db(db_, store::Db::Mode::read_only);
    store::Stmt q(db, ("SELECT count(*) FROM " + table + " WHERE run_id = ?1").c_str());
    q.bind(1, run);
    EXPECT_TRUE(q.step());
    return q.col_int(0);
  }
  std::string job_id(int64_t run) {
    store::Db db(db_, store::Db::Mode::read_only);
    store::Stmt q(db, "SELECT job_id FROM remote_runs WHERE run_id = ?1");
    q.bind(1, run);
    return q.step() ? q.col_text(0) : "";
  }
  // The process group of a run's job on node n (its recorded pid).
  pid_t job_group(int n, int64_t run) {
    const std::string s = read_file(node_job_dir(n, job_id(run)) / "pid");
    return s.empty() ? -1 : static_cast<pid_t>(std::stol(s));
  }
  // Live (not zombie) processes of the run's job on node n: its process group (wrapper and
  // launcher) and every process whose command line names its job directory (the ranks, which the
  // launcher puts in a group of their own). The container's pid 1 may not reap orphans, so a
  // zombie is not "left behind".
  std::vector<pid_t> live_job_processes(int n, int64_t run, bool by_group = true) {
    const pid_t g = job_group(n, run);
    const std::string dir = node_job_dir(n, job_id(run)).string();
    std::vector<pid_t> live;
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = read_file(e.path() / "stat");
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream f(stat.substr(close + 2));
      char state = 0;
      long ppid = 0, pgrp = 0;
      f >> state >> ppid >> pgrp;
      if (state == 'Z' || state == 'X') continue;
      const std::string cmd = read_file(e.path() / "cmdline");
      if ((by_group && pgrp == g) || cmd.find(dir) != std::string::npos) live.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return live;
  }
  // True once nothing of the run's job is left on node n. Leftovers get up to 5 s: sshd ends the
  // shell of a closed channel, and a rank killed through PDEATHSIG exits, after the client returns.
  bool job_gone(int n, int64_t run) {
    if (job_group(n, run) <= 0) return false;
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const std::vector<pid_t> live = live_job_processes(n, run);
      if (live.empty()) return true;
      if (std::chrono::steady_clock::now() - t0 > 5s) {
        for (pid_t pid : live) {
          std::string cmd = read_file(fs::path("/proc") / std::to_string(pid) / "cmdline");
          std::replace(cmd.begin(), cmd.end(), '\0', ' ');
          std::printf("left behind on node %d: pid %d: %s\n", n, static_cast<int>(pid), cmd.c_str());
        }
        return false;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  // Rank r's process of the run on node n (its environment says MOE_RANK=r), -1 if none.
  pid_t rank_process(int n, int64_t run, int r) {
    for (pid_t pid : live_job_processes(n, run)) {
      const std::string env = read_file(fs::path("/proc") / std::to_string(pid) / "environ");
      if (env.find("MOE_RANK=" + std::to_string(r) + '\0') != std::string::npos) return pid;
    }
    return -1;
  }
  fs::path node_job_dir(int n, const std::string& job) {
    return node_home(n) / ".moe-studio" / "jobs" / job / ("node-" + std::to_string(n));
  }
  // Waits until the run has at least `steps` steps recorded (false after `timeout`).
  bool wait_steps(int64_t& run, int64_t steps, std::chrono::seconds timeout) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < timeout) {
      try {  // moe creates the file, then its schema: until then queries throw
        if (fs::exists(db_)) {
          if (run == 0) run = latest_run();
          if (run > 0 && info(run).n_steps >= steps) return true;
        }
      } catch (const moe::Error&) {
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  fs::path tmp_;
  std::string db_, hosts_, known_hosts_;
};

std::map<int64_t, double> losses_of(const std::string& jsonl) {
  std::map<int64_t, double> m;
  std::istringstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("type", "") == "step") m[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return m;
}

std::map<int64_t, double> losses_of(const std::string& db, int64_t run) {
  std::map<int64_t, double> m;
  store::Db d(db, store::Db::Mode::read_only);
  store::Stmt q(d, "SELECT step, loss FROM steps WHERE run_id = ?1");
  q.bind(1, run);
  while (q.step()) m[q.col_int(0)] = q.col_double(1);
  return m;
}

TEST_F(RemoteRun, TwoNodesTwoRanksTrainLikeLocalAndSecondLaunchSkipsUpload) {
  const int steps = 6;
  const auto t0 = std::chrono::steady_clock::now();
  Proc p = spawn(launch_args(steps, 29611), tmp_ / "remote.out");
  ASSERT_EQ(wait_exit(p, 240s), 0) << read_file(p.out);
  const std::string out = read_file(p.out);
  const int64_t run = latest_run();
  const store::RunInfo ri = info(run);
  EXPECT_EQ(ri.status, "completed");
  EXPECT_EQ(ri.n_steps, steps);
  EXPECT_EQ(ri.world_size, 4);
  EXPECT_EQ(ri.malformed_lines, 0);
  // a2a records carry every one of the 4 ranks (2 on each node), all moving bytes.
  const auto rows = store::RunReader(db_).a2a_after(run, 0);
  ASSERT_EQ(rows.size(), static_cast<size_t>(steps * 2 * 4));  // steps × layers × {dispatch,combine}×{fwd,bwd}
  for (const auto& r : rows) {
    ASSERT_EQ(r.rank_bytes.size(), 4u);
    ASSERT_EQ(r.rank_us.size(), 4u);
    for (int64_t b : r.rank_bytes) EXPECT_GT(b, 0);
  }
  // Each node ran 2 ranks: node-b's log has ranks 2 and 3.
  const std::string job = job_id(run);
  const std::string log_b = read_file(node_job_dir(1, job) / "log");
  EXPECT_NE(log_b.find("[rank 2]"), std::string::npos) << log_b;
  EXPECT_NE(log_b.find("[rank 3]"), std::string::npos) << log_b;
  EXPECT_NE(out.find("[127.0.0.1:" + std::to_string(node_port(1)) + "] [rank 3]"), std::string::npos) << "node-b's stderr reaches the console";
  std::printf("[remote run] 2 nodes x 2 ranks, %d steps: %.1f s end to end\n", steps, seconds_since(t0));

  // The same job launched locally (one node, 4 ranks) gives the same losses.
  const auto want = train_locally(tiny_sets(steps), 4, 29671, "local");
  const auto got = losses_of(db_, run);
  ASSERT_EQ(want.size(), static_cast<size_t>(steps));
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [step, loss] : want) {
    ASSERT_TRUE(got.count(step)) << "step " << step;
    EXPECT_DOUBLE_EQ(got.at(step), loss) << "step " << step;
  }

  // A second launch finds the bundle on both nodes: no upload. Time from Launch to first step.
  const auto t1 = std::chrono::steady_clock::now();
  Proc p2 = spawn(launch_args(10, 29612), tmp_ / "second.out");
  int64_t run2 = 0;
  while (run2 <= run && seconds_since(t1) < 60) {
    run2 = latest_run();  // the store exists already: no schema race here
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(run2, run);
  const auto until = t1 + 120s;
  while (info(run2).n_steps < 1 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  const double first_step_s = seconds_since(t1);
  ASSERT_GE(info(run2).n_steps, 1) << read_file(p2.out);
  std::printf("[remote run] warm deploy cache: launch to first step recorded %.2f s\n", first_step_s);
  ASSERT_EQ(wait_exit(p2, 240s), 0) << read_file(p2.out);
  const std::string out2 = read_file(p2.out);
  EXPECT_EQ(out2.find("bundle uploaded"), std::string::npos) << out2;
  EXPECT_NE(out2.find("127.0.0.1:" + std::to_string(node_port(0)) + ": bundle present, upload skipped"), std::string::npos) << out2;
  EXPECT_NE(out2.find("127.0.0.1:" + std::to_string(node_port(1)) + ": bundle present, upload skipped"), std::string::npos) << out2;
}

// Every dimension at once over SSH (issue 15): dp 2 × tp 2 × pp 2 × ep 2 = 16 ranks, 8 on each of
// the fixture's nodes, so pipeline stage 0 runs on node a and stage 1 on node b and every
// activation and gradient crosses between them. The losses are those of the same layout launched
// locally, and the step records carry both stages' figures.
TEST_F(RemoteRun, FourDimensionalLayoutOverTwoNodesTrainsLikeLocal) {
  const std::string key = (fixture_dir() / "client_key").string();
  write_file(hosts_, "127.0.0.1 slots=8 port=" + std::to_string(node_port(0)) + " key=" + key + "\n127.0.0.1 slots=8 port=" + std::to_string(node_port(1)) + " key=" + key + "\n");
  const int steps = 3;
  std::vector<std::string> sets = tiny_sets(steps);
  for (const char* s : {"--set", "parallel.ep=2", "--set", "parallel.dp=2", "--set", "parallel.tp=2", "--set",
                        "parallel.pp=2", "--set", "train.grad_accum=2", "--set", "train.micro_batch=2"})
    sets.push_back(s);
  std::vector<std::string> remote = {MOE_TINY_SPEC};
  remote.insert(remote.end(), sets.begin(), sets.end());
  Proc p = spawn(moe(remote, 29613), tmp_ / "remote4d.out");
  ASSERT_EQ(wait_exit(p, 300s), 0) << read_file(p.out);
  const int64_t run = latest_run();
  const store::RunInfo ri = info(run);
  EXPECT_EQ(ri.status, "completed");
  EXPECT_EQ(ri.world_size, 16);
  EXPECT_EQ(ri.n_steps, steps);
  const auto pipeline = store::RunReader(db_).last_pipeline_step(run);
  ASSERT_TRUE(pipeline.has_value());
  EXPECT_EQ(pipeline->busy_ms.size(), 2u);
  EXPECT_GT(pipeline->bytes[0], 0);
  const std::string log_b = read_file(node_job_dir(1, job_id(run)) / "log");
  EXPECT_NE(log_b.find("[rank 15]"), std::string::npos) << "stage 1's ranks 8–15 run on node b";

  const auto want = train_locally(sets, 16, 29672, "local4d");
  const auto got = losses_of(db_, run);
  ASSERT_EQ(want.size(), static_cast<size_t>(steps));
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [step, loss] : want) EXPECT_NEAR(got.at(step), loss, 1e-9 * loss) << "step " << step;
}

TEST_F(RemoteRun, AttachAfterKilledClientRecordsEveryStepOnce) {
  const int steps = 40;
  Proc p = spawn(launch_args(steps, 29621), tmp_ / "client.out");
  int64_t run = 0;
  ASSERT_TRUE(wait_steps(run, 3, 180s)) << read_file(p.out);
  ::kill(p.pid, SIGKILL);
  ASSERT_EQ(wait_exit(p, 10s), 128 + SIGKILL);
  const int64_t before = info(run).n_steps;
  EXPECT_FALSE(store::is_final_status(info(run).status));
  EXPECT_LT(before, steps) << "the client must die mid-run for this test to mean anything";

  std::vector<std::string> attach = moe({"--attach", std::to_string(run)}, 29621);
  Proc a = spawn(attach, tmp_ / "attach.out");
  ASSERT_EQ(wait_exit(a, 240s), 0) << read_file(a.out);
  EXPECT_NE(read_file(a.out).find("reattaching to run"), std::string::npos);
  const store::RunInfo ri = info(run);
  EXPECT_EQ(ri.status, "completed");
  // Every step once: the table holds 1..steps, and the summary (which counts a repeated step
  // once) agrees with it.
  EXPECT_EQ(count("steps", run), steps);
  EXPECT_EQ(ri.n_steps, steps);
  EXPECT_EQ(ri.total_tokens, steps * 8 * 4 * 32);  // micro_batch × ep × seq_len per step
  EXPECT_EQ(count("a2a", run), steps * 2 * 4);
  EXPECT_EQ(count("expert_load", run), steps * 2);
  EXPECT_EQ(ri.malformed_lines, 0);
  const auto got = losses_of(db_, run);
  ASSERT_EQ(got.size(), static_cast<size_t>(steps));
  EXPECT_EQ(got.begin()->first, 1);
  EXPECT_EQ(got.rbegin()->first, steps);
  // The stored resume point is the whole metrics file.
  store::Db db(db_, store::Db::Mode::read_only);
  store::Stmt q(db, "SELECT metrics_offset FROM remote_runs WHERE run_id = ?1");
  q.bind(1, run);
  ASSERT_TRUE(q.step());
  EXPECT_EQ(static_cast<uintmax_t>(q.col_int(0)), fs::file_size(node_job_dir(0, job_id(run)) / "metrics.jsonl"));
}

TEST_F(RemoteRun, KillingOneNodesSshdFailsTheRunWithin15s) {
  Proc p = spawn(launch_args(400, 29631), tmp_ / "client.out");
  int64_t run = 0;
  ASSERT_TRUE(wait_steps(run, 2, 180s)) << read_file(p.out);
  ASSERT_TRUE(fixture("kill-node", 1));
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = wait_exit(p, 20s);
  const double s = seconds_since(t0);
  EXPECT_TRUE(fixture("start-node", 1));
  ASSERT_EQ(rc, 1) << read_file(p.out);
  EXPECT_LT(s, 15.0);
  const store::RunInfo ri = info(run);
  EXPECT_EQ(ri.status, "failed");
  EXPECT_NE(ri.end_reason.find(node_address(1)), std::string::npos) << ri.end_reason;
  std::printf("[remote run] node-b's sshd killed: run failed after %.1f s: %s\n", s, ri.end_reason.c_str());
  // Node a's share was cancelled: nothing of it is left.
  EXPECT_TRUE(job_gone(0, run)) << "process group " << job_group(0, run) << " on node-a";
}

TEST_F(RemoteRun, KillingARemoteRankFailsTheRunWithin15s) {
  Proc p = spawn(launch_args(400, 29641), tmp_ / "client.out");
  int64_t run = 0;
  ASSERT_TRUE(wait_steps(run, 2, 180s)) << read_file(p.out);
  // Rank 3 runs on node-b.
  const pid_t rank3 = rank_process(1, run, 3);
  ASSERT_GT(rank3, 0) << "no rank 3 on node-b";
  ASSERT_EQ(::kill(rank3, SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = wait_exit(p, 20s);
  const double s = seconds_since(t0);
  ASSERT_EQ(rc, 1) << read_file(p.out);
  EXPECT_LT(s, 15.0);
  const store::RunInfo ri = info(run);
  EXPECT_EQ(ri.status, "failed");
  // Whichever node noticed first, the reason names node-b and what happened to its rank.
  EXPECT_NE(ri.end_reason.find("[127.0.0.1:" + std::to_string(node_port(1)) + "] launcher: rank 3 was killed by signal 9"), std::string::npos)
      << ri.end_reason;
  std::printf("[remote run] rank 3 killed: run failed after %.1f s: %s\n", s, ri.end_reason.c_str());
  for (int n = 0; n < 2; ++n) EXPECT_TRUE(job_gone(n, run)) << "process group " << job_group(n, run) << " on node " << n;
}

TEST_F(RemoteRun, CtrlCCancelsEveryNodeAndLeavesNoProcess) {
  Proc p = spawn(launch_args(400, 29651), tmp_ / "client.out");
  int64_t run = 0;
  ASSERT_TRUE(wait_steps(run, 2, 180s)) << read_file(p.out);
  const std::string job = job_id(run);
  ASSERT_EQ(::kill(p.pid, SIGINT), 0);
  ASSERT_EQ(wait_exit(p, 30s), 130) << read_file(p.out);
  EXPECT_EQ(info(run).status, "cancelled");
  for (int n = 0; n < 2; ++n) {
    ASSERT_TRUE(fs::exists(node_job_dir(n, job) / "pid")) << "node " << n << " never started";
    EXPECT_TRUE(job_gone(n, run)) << "process group " << job_group(n, run) << " on node " << n << " still has processes";
  }
}

TEST_F(RemoteRun, RefusesUnknownHostKeyAndSlotsThatDoNotFitTheSpec) {
  // Unknown host keys (empty known_hosts), no --accept-new-host-keys: refused, naming the host.
  write_file(known_hosts_, "");
  Proc p = spawn(launch_args(2, 29661), tmp_ / "unknown.out");
  ASSERT_EQ(wait_exit(p, 60s), 1);
  const std::string out = read_file(p.out);
  EXPECT_NE(out.find("SHA256:"), std::string::npos) << out;
  EXPECT_NE(out.find("127.0.0.1"), std::string::npos) << out;
  EXPECT_EQ(info(latest_run()).status, "failed");
  EXPECT_EQ(read_file(known_hosts_), "") << "nothing may be trusted without acceptance";

  // 2 nodes × 2 slots = 4 processes, but ep = 2 needs 2: refused before anything is started.
  std::vector<std::string> bad = launch_args(2, 29662);
  bad.push_back("--set");
  bad.push_back("parallel.ep=2");
  Proc q = spawn(bad, tmp_ / "slots.out");
  ASSERT_EQ(wait_exit(q, 60s), 1);
  const std::string qout = read_file(q.out);
  EXPECT_NE(qout.find("4 processes, but the spec needs dp·tp·pp·ep = 2"), std::string::npos) << qout;
  EXPECT_NE(qout.find(hosts_), std::string::npos) << qout;
}

}  // namespace
}  // namespace moe::remote::test
