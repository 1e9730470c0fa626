// `moe run --slurm LOGINFILE` end to end: the real moe CLI connects to the sshd fixture's node-a as
// the login node, deploys the bundle (store_fake_runtime as moe-runtime, and the Slurm driver),
// and the driver submits through the Slurm stand-ins (slurm-standins/, a test fixture) first on
// its PATH; the metrics stream comes back over SSH into the store as for `--hosts`.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe_cli_proc.h"
#include "remote_fixture.h"
#include "run_reader.h"
#include "sqlite_db.h"

namespace moe::remote::test {
namespace {

using namespace std::chrono_literals;

using Result = MoeResult;

std::string job_of(const std::string& db_path, int64_t run) {
  store::Db db(db_path, store::Db::Mode::read_only);
  store::Stmt q(db, "SELECT job_id FROM remote_runs WHERE run_id = ?1");
  q.bind(1, run);
  return q.step() ? q.col_text(0) : "";
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// Steps of run 1 stored so far (the store is read while moe writes it).
int64_t stored_steps(const std::string& db) {
  if (!fs::exists(db)) return 0;
  try {
    store::RunReader reader(db);
    const auto runs = reader.list_runs();
    return runs.empty() ? 0 : runs.front().n_steps;
  } catch (const std::exception&) {
    return 0;
  }
}

class SlurmRun : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = temp_dir("slurm-run");
    db_ = (tmp_ / "runs.sqlite").string();
    known_hosts_ = (tmp_ / "known_hosts").string();
    write_file(known_hosts_, known_hosts_line(0) + known_hosts_line(1));
    bundle_ = tmp_ / "bundle";
    fs::create_directories(bundle_ / "resources" / "slurm");
    // The nodes' runtime: store_fake_runtime at 20 ms a step (its pace comes from the environment,
    // which srun passes on but SSH does not, hence the script).
    write_file(bundle_ / "moe-runtime", std::string("#!/bin/sh\nFAKE_STEP_MS=20 exec '") + STORE_FAKE_RUNTIME + "' \"$@\"\n");
    fs::permissions(bundle_ / "moe-runtime", fs::perms::owner_all);
    fs::copy_file(MOE_SLURM_DRIVER, bundle_ / "resources" / "slurm" / "moe-slurm-job");
    login_ = (tmp_ / "login.txt").string();
    write_file(login_, "127.0.0.1 slots=1 port=" + std::to_string(node_port(0)) + " key=" + (fixture_dir() / "client_key").string() + "  # the login node\n");
  }
  void TearDown() override { fs::remove_all(tmp_); }
  std::vector<std::string> moe_run(const std::string& loginfile, const std::vector<std::string>& extra) const {
    std::vector<std::string> a = {"run", MOE_TINY_SPEC, "--db", db_, "--slurm", loginfile, "--slurm-bin", MOE_SLURM_STANDINS,
                                  "--known-hosts", known_hosts_, "--bundle", bundle_.string(), "--master-port", "29657",
                                  "--set", "parallel.ep=2", "--set", "parallel.gpus_per_node=1", "--set", "train.steps=3"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  size_t runs() const {
    if (!fs::exists(db_)) return 0;
    return store::RunReader(db_).list_runs().size();
  }
  fs::path tmp_, bundle_;
  std::string db_, known_hosts_, login_;
};

}  // namespace

TEST_F(SlurmRun, SubmitsThroughTheLoginNodeAndRecordsTheStream) {
  const Result r = run_moe(moe_run(login_, {"--set", "cluster.slurm.partition=debug", "--set", "cluster.slurm.account=moe-lab",
                                            "--set", "cluster.slurm.time_limit=0-01:30:00"}),
                           tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("on 1 Slurm login node"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("slurm: submitted batch job"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ended COMPLETED"), std::string::npos) << r.err;
  const int64_t run = std::stoll(r.out);
  store::RunReader reader(db_);
  const store::RunInfo info = reader.run(run);
  EXPECT_EQ(info.status, "completed") << info.end_reason;
  EXPECT_EQ(info.n_steps, 3);
  // The spec as submitted: two Slurm nodes of one rank (ep 2, one GPU a node).
  const auto spec = nlohmann::json::parse(reader.spec_json(run));
  ASSERT_EQ(spec["cluster"]["nodes"].size(), 2u);
  EXPECT_EQ(spec["cluster"]["nodes"][0]["host"], "slurm-node-0");
  // On the login node: the batch script as sbatch got it, and the Slurm job id.
  const std::string job = job_of(db_, run);
  ASSERT_FALSE(job.empty());
  const fs::path jd = node_home(0) / ".moe-studio" / "jobs" / job / "node-0";
  const std::string batch = read_file(jd / "batch.sh");
  for (const char* line : {"#SBATCH --nodes=2\n", "#SBATCH --partition=debug\n", "#SBATCH --account=moe-lab\n",
                           "#SBATCH --time=0-01:30:00\n", "#SBATCH --job-name=moe-tiny-cpu\n"})
    EXPECT_NE(batch.find(line), std::string::npos) << line << batch;
  EXPECT_EQ(batch.find("--gpus-per-node"), std::string::npos) << "a CPU job asks for no GPU";
  EXPECT_FALSE(read_file(jd / "slurm_job_id").empty());
}

TEST_F(SlurmRun, CtrlCScancelsTheJobAndRecordsItCancelled) {
  const pid_t moe = spawn_moe(moe_run(login_, {"--set", "train.steps=100000"}), tmp_);
  ASSERT_TRUE(wait_until([&] { return stored_steps(db_) >= 5; }, 60s)) << read_file(tmp_ / "err.txt");
  ::kill(moe, SIGINT);
  const Result r = wait_moe(moe, tmp_);
  EXPECT_EQ(r.code, 130) << r.err;
  const store::RunInfo info = store::RunReader(db_).list_runs().front();
  EXPECT_EQ(info.status, "cancelled") << info.end_reason;
  // Slurm saw the cancel, and nothing of the job is left on the "nodes": no process whose command
  // line names the job (the driver, task.sh and the runtimes all do, through its directory).
  EXPECT_NE(r.err.find("ended CANCELLED"), std::string::npos) << r.err;
  const std::string job = job_of(db_, info.id);
  ASSERT_FALSE(job.empty());
  // "[r]un-…": a pattern that does not match the shell running pgrep, whose command line holds it.
  const std::string pattern = "'[" + job.substr(0, 1) + "]" + job.substr(1) + "'";
  EXPECT_TRUE(wait_until([&] { return std::system(("pgrep -f " + pattern + " > /dev/null").c_str()) != 0; }, 10s))
      << "a process of job " << job << " outlived the cancel:\n"
      << (std::system(("pgrep -af " + pattern + " > '" + (tmp_ / "left.txt").string() + "'").c_str()), read_file(tmp_ / "left.txt"));
}

TEST_F(SlurmRun, AttachFollowsTheJobAfterTheClientIsKilled) {
  const pid_t moe = spawn_moe(moe_run(login_, {"--set", "train.steps=150"}), tmp_);
  ASSERT_TRUE(wait_until([&] { return stored_steps(db_) >= 5; }, 60s)) << read_file(tmp_ / "err.txt");
  ::kill(moe, SIGKILL);
  wait_moe(moe, tmp_);
  const int64_t run = store::RunReader(db_).list_runs().front().id;
  const Result r = run_moe({"run", "--attach", std::to_string(run), "--db", db_, "--known-hosts", known_hosts_}, tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  const store::RunInfo info = store::RunReader(db_).run(run);
  EXPECT_EQ(info.status, "completed") << info.end_reason;
  EXPECT_EQ(info.n_steps, 150) << "every step once";
  EXPECT_EQ(info.malformed_lines, 0);
}

// A hostfile whose one host is marked role=slurm-login: plain --hosts submits through Slurm.
TEST_F(SlurmRun, HostfileMarkingALoginNodeSubmitsThroughIt) {
  const std::string marked = (tmp_ / "marked.txt").string();
  write_file(marked, "127.0.0.1 slots=1 port=" + std::to_string(node_port(0)) + " role=slurm-login key=" + (fixture_dir() / "client_key").string() + "\n");
  std::vector<std::string> args = moe_run(login_, {});
  auto at = std::find(args.begin(), args.end(), "--slurm");
  *at = "--hosts";
  *(at + 1) = marked;
  const Result r = run_moe(args, tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("on 1 Slurm login node"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("slurm: submitted batch job"), std::string::npos) << r.err;
  EXPECT_EQ(store::RunReader(db_).run(std::stoll(r.out)).n_steps, 3);
  // With a second host the login node is refused, naming its line.
  write_file(marked, read_file(marked) + "127.0.0.1 slots=1 port=" + std::to_string(node_port(1)) + "\n");
  const Result two = run_moe(args, tmp_);
  EXPECT_EQ(two.code, 1);
  EXPECT_NE(two.err.find("marked.txt:1: a Slurm login node (role=slurm-login) must be the hostfile's only host"),
            std::string::npos) << two.err;
  EXPECT_EQ(runs(), 1u) << "the refused run was not recorded";
}

TEST_F(SlurmRun, BadInputIsRefusedBeforeAnythingIsRecorded) {
  // Two hosts: --slurm names one login node.
  const std::string two = (tmp_ / "two.txt").string();
  write_file(two, read_file(login_) + "127.0.0.1 slots=1 port=" + std::to_string(node_port(1)) + " key=" + (fixture_dir() / "client_key").string() + "\n");
  Result r = run_moe(moe_run(two, {}), tmp_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--slurm takes one host, the login node (2 listed)"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // A partition that would add a #SBATCH line.
  r = run_moe(moe_run(login_, {"--set", "cluster.slurm.partition=a\n#SBATCH --uid=0"}), tmp_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cluster.slurm.partition"), std::string::npos) << r.err;
  r = run_moe(moe_run(login_, {"--set", "cluster.slurm.time_limit=90 minutes"}), tmp_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cluster.slurm.time_limit"), std::string::npos) << r.err;
  // --hosts and --slurm together.
  std::vector<std::string> both = moe_run(login_, {"--hosts", login_});
  r = run_moe(both, tmp_);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(runs(), 0u) << "nothing recorded";
}

}  // namespace moe::remote::test
