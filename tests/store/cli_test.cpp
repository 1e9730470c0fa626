// `moe runs …` and `moe run …` as a user runs them: real processes, real pipes. `moe run` is tested
// against store_fake_runtime (a stand-in that writes a contract-valid stream) and, when it has been
// built, against the real moe-runtime. Exports are checked with the contract checker check-stream.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "run_reader.h"
#include "sqlite_db.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

using test::TempDir;

struct Proc {
  int code = -1;
  std::string out, err;
};

pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env, const std::string& out_file,
            const std::string& err_file) {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    int o = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

Proc finish(pid_t pid, const std::string& out_file, const std::string& err_file) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  Proc p;
  p.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  p.out = test::read_file(out_file);
  p.err = test::read_file(err_file);
  return p;
}

Proc run(const TempDir& dir, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  const std::string o = dir.file("out.txt"), e = dir.file("err.txt");
  return finish(spawn(args, env, o, e), o, e);
}

std::string preset(const char* name) { return std::string(MOE_SOURCE_DIR) + "/resources/presets/" + name; }

// Runs the contract checker on a file; "" when it passes, else its output.
std::string check_stream(const TempDir& dir, const std::string& file) {
  Proc p = run(dir, {"python3", CHECK_STREAM, file});
  return p.code == 0 ? "" : "check-stream failed (" + std::to_string(p.code) + "):\n" + p.out + p.err;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(CHECK_STREAM)) GTEST_SKIP() << "no contract checker at " << CHECK_STREAM;
  }
  TempDir dir;
  std::string db = dir.file("runs.sqlite");
};

TEST_F(Cli, ImportListShowExportRoundTrip) {
  const std::string stream = dir.file("stream.jsonl");
  SyntheticShape shape{.steps = 25, .layers = 3, .experts = 8, .ranks = 2};
  test::write_file(stream, synthetic_stream(shape));
  ASSERT_EQ(check_stream(dir, stream), "");
  Proc imp = run(dir, {MOE_CLI, "runs", "import", stream, "--db", db, "--tag", "cluster"});
  ASSERT_EQ(imp.code, 0) << imp.err;
  const std::string id = imp.out.substr(0, imp.out.find('\n'));
  EXPECT_NE(imp.err.find("0 malformed"), std::string::npos) << imp.err;

  Proc list = run(dir, {MOE_CLI, "runs", "list", "--db", db});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find("synthetic"), std::string::npos);
  EXPECT_NE(list.out.find("completed"), std::string::npos);

  Proc show = run(dir, {MOE_CLI, "runs", "show", id, "--db", db});
  ASSERT_EQ(show.code, 0) << show.err;
  for (const char* want : {"final loss", "tokens/s", "drop rate", "load imbalance", "max/mean avg", "cluster"}) {
    EXPECT_NE(show.out.find(want), std::string::npos) << want << "\n" << show.out;
  }

  const std::string out = dir.file("export.jsonl");
  Proc exp = run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "--format", "jsonl", "-o", out});
  ASSERT_EQ(exp.code, 0) << exp.err;
  EXPECT_EQ(check_stream(dir, out), "");
  // Same records as the input: re-import the export, export again, compare the text.
  Proc imp2 = run(dir, {MOE_CLI, "runs", "import", out, "--db", db});
  ASSERT_EQ(imp2.code, 0);
  Proc exp2 = run(dir, {MOE_CLI, "runs", "export", imp2.out.substr(0, imp2.out.find('\n')), "--db", db});
  EXPECT_EQ(exp2.out, test::read_file(out));

  Proc csv = run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("step,loss,aux_loss,z_loss,lr,tokens,step_ms,tokens_per_s\n", 0), 0u);
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), shape.steps + 1);
  Proc csv_load = run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "--format", "csv", "--table", "expert_load"});
  EXPECT_EQ(std::count(csv_load.out.begin(), csv_load.out.end(), '\n'), shape.steps * shape.layers * shape.experts + 1);
}

TEST_F(Cli, TagCompareDeleteAndErrors) {
  SyntheticShape a{.steps = 10, .layers = 2, .experts = 4, .ranks = 0, .seed = 1, .name = "alpha"};
  SyntheticShape b{.steps = 12, .layers = 2, .experts = 8, .ranks = 0, .seed = 2, .name = "beta"};
  test::write_file(dir.file("a.jsonl"), synthetic_stream(a));
  test::write_file(dir.file("b.jsonl"), synthetic_stream(b));
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "import", dir.file("a.jsonl"), "--db", db}).code, 0);
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "import", dir.file("b.jsonl"), "--db", db}).code, 0);
  const std::string evil = "x'); DROP TABLE runs; --\"";
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "tag", "alpha", evil, "--db", db}).code, 0);
  Proc list = run(dir, {MOE_CLI, "runs", "list", "--db", db, "--json"});
  auto runs = nlohmann::json::parse(list.out);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1]["tags"][0], evil);

  Proc cmp = run(dir, {MOE_CLI, "runs", "compare", "alpha", "beta", "--db", db});
  ASSERT_EQ(cmp.code, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("model.moe.num_experts"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("name"), std::string::npos);
  EXPECT_EQ(cmp.out.find("model.moe.top_k"), std::string::npos) << "equal keys are not listed";

  Proc del = run(dir, {MOE_CLI, "runs", "delete", "alpha", "--db", db});
  ASSERT_EQ(del.code, 0) << del.err;
  Proc gone = run(dir, {MOE_CLI, "runs", "show", "alpha", "--db", db});
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.err.find("no run 'alpha'"), std::string::npos) << gone.err;
  EXPECT_EQ(std::count(gone.err.begin(), gone.err.end(), '\n'), 1) << "one line";

  EXPECT_EQ(run(dir, {MOE_CLI, "runs", "list"}).code, 2);  // --db missing: usage
  Proc missing = run(dir, {MOE_CLI, "runs", "import", dir.file("nope.jsonl"), "--db", db});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.jsonl"), std::string::npos);
}

// `moe runs prune` reports what it frees (the dry run changes nothing), `vacuum` gives it back;
// the a2a_steps CSV lists every step's sums.
TEST_F(Cli, PruneAndVacuumGiveBackThePerRankRecords) {
  const std::string stream = dir.file("stream.jsonl");
  test::write_file(stream, synthetic_stream(SyntheticShape{.steps = 400, .layers = 4, .experts = 8, .ranks = 8}));
  Proc imp = run(dir, {MOE_CLI, "runs", "import", stream, "--db", db});
  ASSERT_EQ(imp.code, 0) << imp.err;
  const std::string id = imp.out.substr(0, imp.out.find('\n'));
  Proc dry = run(dir, {MOE_CLI, "runs", "prune", "--db", db, "--keep-last", "50", "--dry-run"});
  ASSERT_EQ(dry.code, 0) << dry.err;
  // Kept: steps 1–100, 200, 300, 400; below 350: 102 steps × 4 layers × 4 exchanges.
  EXPECT_EQ(dry.out.rfind("dry run: 1 finished run(s): 1632 per-rank a2a record(s), ", 0), 0u) << dry.out;
  Proc csv = run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "--format", "csv", "--table", "a2a"});
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 103 * 4 * 4 * 8 + 1);  // unchanged
  Proc real = run(dir, {MOE_CLI, "runs", "prune", id, "--db", db, "--keep-last", "50"});
  ASSERT_EQ(real.code, 0) << real.err;
  EXPECT_EQ(real.out.rfind("1 finished run(s): 1632 per-rank a2a record(s), ", 0), 0u) << real.out;
  csv = run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "--format", "csv", "--table", "a2a"});
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 1 * 4 * 4 * 8 + 1);  // step 400's
  Proc sums = run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "--format", "csv", "--table", "a2a_steps"});
  ASSERT_EQ(sums.code, 0) << sums.err;
  EXPECT_EQ(sums.out.rfind("step,phase,pass,records,rank,sum_us,min_us,max_us,bytes\n", 0), 0u);
  EXPECT_EQ(std::count(sums.out.begin(), sums.out.end(), '\n'), 400 * 4 * 8 + 1);
  Proc vac = run(dir, {MOE_CLI, "runs", "vacuum", "--db", db});
  ASSERT_EQ(vac.code, 0) << vac.err;
  EXPECT_NE(vac.out.find(" MB -> "), std::string::npos) << vac.out;
  Proc bad = run(dir, {MOE_CLI, "runs", "prune", "--db", db, "--keep-last", "ten"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--keep-last: 'ten'"), std::string::npos) << bad.err;
}

TEST_F(Cli, RunRecordsTheRuntimeStreamLive) {
  Proc r = run(dir, {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=12"},
               {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME});
  ASSERT_EQ(r.code, 0) << r.err;
  RunReader reader(db);
  RunInfo info = reader.run(std::stoll(r.out));
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.n_steps, 12);
  EXPECT_EQ(info.name, "tiny-cpu");
  EXPECT_EQ(info.n_layers, 4);
  EXPECT_EQ(info.n_experts, 8);
  // The stored spec is the resolved one, --set applied.
  EXPECT_EQ(nlohmann::json::parse(reader.spec_json(info.id))["train"]["steps"], 12);
}

TEST_F(Cli, CtrlCCancelsTheRunAndRecordsCancelled) {
  const std::string o = dir.file("o.txt"), e = dir.file("e.txt");
  pid_t pid = spawn({MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=100000"},
                    {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME, "FAKE_STEP_MS=20"}, o, e);
  // Wait until steps are being recorded, then press Ctrl-C.
  int64_t seen = 0;
  for (int i = 0; i < 500 && seen < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      RunReader reader(db);
      auto runs = reader.list_runs();
      if (!runs.empty()) seen = runs[0].n_steps;
    } catch (const std::exception&) {
    }
  }
  ASSERT_GE(seen, 5) << "no steps recorded while running";
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  Proc p = finish(pid, o, e);
  EXPECT_EQ(p.code, 130) << p.err;
  RunReader reader(db);
  RunInfo info = reader.run(std::stoll(p.out));
  EXPECT_EQ(info.status, "cancelled");
  EXPECT_GE(info.n_steps, seen);
  EXPECT_LT(info.n_steps, 100000);
  const std::string out = dir.file("cancelled.jsonl");
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "export", p.out.substr(0, p.out.find('\n')), "--db", db, "-o", out}).code, 0);
  EXPECT_EQ(check_stream(dir, out), "");
}

TEST_F(Cli, ARuntimeThatDiesIsRecordedAsFailed) {
  Proc r = run(dir, {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=10"},
               {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME, "FAKE_FAIL_AFTER=3"});
  EXPECT_EQ(r.code, 1);
  RunReader reader(db);
  RunInfo info = reader.run(std::stoll(r.out));
  EXPECT_EQ(info.status, "failed");
  EXPECT_EQ(info.n_steps, 3);
  EXPECT_NE(info.end_reason.find("exit code 3"), std::string::npos) << info.end_reason;
  Proc bad = run(dir, {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "parallel.ep=3"},
                 {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("parallel.ep"), std::string::npos) << bad.err;
}

// A local run is a job like a remote one: `moe run --detach` leaves it running once started (no
// watchdog stops it: it was detached), the run stays `running`, and `moe run --attach` follows it to
// its end, ingesting from the stored byte offset: every step exactly once, status completed.
TEST_F(Cli, AttachFollowsADetachedLocalRunToItsEnd) {
  const std::vector<std::string> env = {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME, "FAKE_STEP_MS=25"};
  Proc d = run(dir, {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=120", "--detach"}, env);
  ASSERT_EQ(d.code, 0) << d.err;
  const int64_t id = std::stoll(d.out);
  EXPECT_NE(d.err.find("moe run --attach " + std::to_string(id)), std::string::npos) << d.err;
  std::string job;
  {
    RunStore st(db);
    Stmt q(st.db(), "SELECT local_root || '/' || job_id || '/node-0', detached FROM remote_runs JOIN run_writers USING(run_id)");
    ASSERT_TRUE(q.step());
    job = q.col_text(0);
    EXPECT_EQ(q.col_int(1), 1);
  }
  // The recorder is gone, the job goes on: its process group lives and its metrics grow.
  const pid_t group = static_cast<pid_t>(std::stol(test::read_file(job + "/pid")));
  const auto size0 = std::filesystem::file_size(job + "/metrics.jsonl");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // three rounds of the watchdog
  EXPECT_EQ(::kill(-group, 0), 0) << "the detached job was stopped: " << test::read_file(job + "/log");
  EXPECT_GT(std::filesystem::file_size(job + "/metrics.jsonl"), size0);
  // A reader does not reap a detached run.
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "list", "--db", db}).code, 0);
  EXPECT_EQ(RunReader(db).run(id).status, "running");

  Proc a = run(dir, {MOE_CLI, "run", "--attach", std::to_string(id), "--db", db}, env);
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(std::stoll(a.out), id);
  EXPECT_NE(a.err.find("reattaching to run " + std::to_string(id)), std::string::npos) << a.err;
  const RunInfo info = RunReader(db).run(id);
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.n_steps, 120);
  EXPECT_EQ(info.malformed_lines, 0);
  RunStore st(db);
  Stmt q(st.db(), "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM steps WHERE run_id = ?1");
  q.bind(1, id);
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.col_int(0), 120);
  EXPECT_EQ(q.col_int(1), 120);
  EXPECT_EQ(q.col_int(2), 1);
  EXPECT_EQ(q.col_int(3), 120);
  Stmt off(st.db(), "SELECT metrics_offset FROM remote_runs WHERE run_id = ?1");
  off.bind(1, id);
  ASSERT_TRUE(off.step());
  EXPECT_EQ(static_cast<uintmax_t>(off.col_int(0)), std::filesystem::file_size(job + "/metrics.jsonl"));
  // Ended runs are reported, not followed again.
  Proc again = run(dir, {MOE_CLI, "run", "--attach", std::to_string(id), "--db", db}, env);
  EXPECT_EQ(again.code, 0);
  EXPECT_NE(again.err.find("already ended: completed"), std::string::npos) << again.err;
}

// `moe run` killed with -9 mid-run (2 ranks), not detached: the job's watchdog sees its recorder
// gone and stops the job (no process of its group left within 10 s), and the next `moe runs` marks
// the run failed naming the recorder; every step committed before the kill is still there and the
// file is intact.
TEST_F(Cli, RealRuntimeWhoseRecorderIsKilledStopsAndTheNextReaderMarksItFailed) {
  const char* env = std::getenv("MOE_TEST_RUNTIME");
  const std::string runtime = env && *env ? env : MOE_RUNTIME_BIN;
  if (!std::filesystem::exists(runtime)) GTEST_SKIP() << "moe-runtime not built at " << runtime;
  const std::string o = dir.file("out.txt"), e = dir.file("err.txt");
  const pid_t moe = spawn({MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=100000",
                           "--set", "parallel.ep=2", "--set", "cluster.nodes.0.slots=2", "--set", "train.micro_batch=2",
                           "--set", "model.n_layers=2", "--set", "model.seq_len=32", "--set", "train.data.val_fraction=0.002"},
                          {"MOE_RUNTIME=" + runtime}, o, e);
  // Wait for a few committed steps (seconds of training, not a fixed sleep).
  int64_t committed = 0;
  for (int i = 0; i < 600 && committed < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    try {
      RunReader reader(db);
      const auto runs = reader.list_runs();
      committed = runs.empty() ? 0 : runs.front().n_steps;
    } catch (const std::exception&) {
      // the store is being created
    }
  }
  ASSERT_GE(committed, 3) << test::read_file(e);
  ::kill(moe, SIGKILL);
  int status = 0;
  ::waitpid(moe, &status, 0);
  // The runtime's process group (recorded in run_writers) must be gone within 10 s.
  int64_t runtime_pid = 0;
  {
    RunStore st(db);
    Stmt q(st.db(), "SELECT runtime_pid FROM run_writers");
    ASSERT_TRUE(q.step());
    runtime_pid = q.col_int(0);
  }
  ASSERT_GT(runtime_pid, 0);
  const auto t0 = std::chrono::steady_clock::now();
  while (::kill(-static_cast<pid_t>(runtime_pid), 0) == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_NE(::kill(-static_cast<pid_t>(runtime_pid), 0), 0) << "the runtime outlived its recorder: " << test::read_file(e);
  // The job's own log says why it stopped.
  std::string job_log;
  {
    RunStore st(db);
    Stmt q(st.db(), "SELECT local_root || '/' || job_id || '/node-0/log' FROM remote_runs");
    ASSERT_TRUE(q.step());
    job_log = test::read_file(q.col_text(0));
  }
  EXPECT_NE(job_log.find("its recorder (pid " + std::to_string(moe) + ") is gone and the job was not detached"),
            std::string::npos)
      << job_log;

  Proc list = run(dir, {MOE_CLI, "runs", "list", "--db", db});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.err.find("marked failed"), std::string::npos) << list.err;
  RunReader reader(db);
  const RunInfo info = reader.list_runs().front();
  EXPECT_EQ(info.status, "failed");
  EXPECT_NE(info.end_reason.find("recording process (moe run, pid " + std::to_string(moe) + ")"), std::string::npos)
      << info.end_reason;
  EXPECT_GE(info.n_steps, committed);
  RunStore st(db);
  Stmt check(st.db(), "PRAGMA integrity_check");
  ASSERT_TRUE(check.step());
  EXPECT_EQ(check.col_text(0), "ok");
}

// The real runtime, when this build has it (or $MOE_TEST_RUNTIME names one): a few steps only, to
// keep the suite fast; a 20-step run checked by hand is noted in docs/run-store.md.
TEST_F(Cli, RealRuntimeTinyCpuRun) {
  const char* env = std::getenv("MOE_TEST_RUNTIME");
  const std::string runtime = env && *env ? env : MOE_RUNTIME_BIN;
  if (!std::filesystem::exists(runtime)) GTEST_SKIP() << "moe-runtime not built at " << runtime;
  // A shrunken tiny-cpu: the runtime's final validation pass dominates the full model's time.
  Proc r = run(dir,
               {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=3", "--set",
                "model.n_layers=2", "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set",
                "model.n_kv_heads=2", "--set", "model.moe.d_expert=32", "--set", "model.seq_len=32"},
               {"MOE_RUNTIME=" + runtime});
  ASSERT_EQ(r.code, 0) << r.err;
  RunReader reader(db);
  RunInfo info = reader.run(std::stoll(r.out));
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.n_steps, 3);
  EXPECT_EQ(info.n_layers, 2);
  EXPECT_FALSE(std::isnan(info.last_loss));
  EXPECT_GT(info.routed_total, 0);
  const std::string out = dir.file("real.jsonl");
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "export", r.out.substr(0, r.out.find('\n')), "--db", db, "-o", out}).code, 0);
  EXPECT_EQ(check_stream(dir, out), "");
}

// A design with several ranks runs locally too: `moe run` hands the launcher one process per
// rank and a free rendezvous port, and the store records every rank's all-to-all figures.
TEST_F(Cli, RealRuntimeExpertParallelRunStartsEveryRank) {
  const char* env = std::getenv("MOE_TEST_RUNTIME");
  const std::string runtime = env && *env ? env : MOE_RUNTIME_BIN;
  if (!std::filesystem::exists(runtime)) GTEST_SKIP() << "moe-runtime not built at " << runtime;
  Proc r = run(dir,
               {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=3", "--set", "parallel.ep=2",
                "--set", "cluster.nodes.0.slots=2", "--set", "train.micro_batch=4", "--set", "train.data.val_fraction=0.002",
                "--set", "model.n_layers=2", "--set",
                "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.n_kv_heads=2", "--set",
                "model.moe.d_expert=32", "--set", "model.seq_len=32"},
               {"MOE_RUNTIME=" + runtime});
  ASSERT_EQ(r.code, 0) << r.err;
  RunReader reader(db);
  const int64_t id = std::stoll(r.out);
  RunInfo info = reader.run(id);
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.n_steps, 3);
  const auto rows = reader.a2a_after(id, 0);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.front().rank_us.size(), 2u);
  // `moe runs show` summarises them: one line per phase and pass, 3 steps × 2 layers each.
  Proc show = run(dir, {MOE_CLI, "runs", "show", std::to_string(id), "--db", db});
  ASSERT_EQ(show.code, 0) << show.err;
  for (const char* phase : {"dispatch", "combine"})
    for (const char* pass : {"fwd", "bwd"}) {
      const std::string name = std::string("  ") + phase + " " + pass + " ";
      const size_t at = show.out.find(name);
      ASSERT_NE(at, std::string::npos) << show.out;
      std::istringstream line(show.out.substr(at + name.size()));
      int64_t records = 0;
      line >> records;
      EXPECT_EQ(records, 6) << show.out;
    }
}

// A spec that asks for checkpoints gets them beside the store (STORE-checkpoints/run-ID), their
// records are in the run, and --resume continues from them as a new run.
TEST_F(Cli, RealRuntimeCheckpointsBesideTheStoreAndResumes) {
  const char* env = std::getenv("MOE_TEST_RUNTIME");
  const std::string runtime = env && *env ? env : MOE_RUNTIME_BIN;
  if (!std::filesystem::exists(runtime)) GTEST_SKIP() << "moe-runtime not built at " << runtime;
  const std::vector<std::string> small = {"--set", "model.n_layers=2", "--set", "model.d_model=32", "--set",
                                          "model.n_heads=2", "--set", "model.n_kv_heads=2", "--set", "model.moe.d_expert=32",
                                          "--set", "model.seq_len=32", "--set", "train.data.val_fraction=0.002", "--set",
                                          "runtime.checkpoint_every=2"};
  std::vector<std::string> first = {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=3"};
  first.insert(first.end(), small.begin(), small.end());
  Proc r = run(dir, first, {"MOE_RUNTIME=" + runtime});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  const std::filesystem::path ck = std::filesystem::path(db).parent_path() / "runs-checkpoints" / ("run-" + id);
  EXPECT_TRUE(std::filesystem::exists(ck / "step-00000002")) << r.err;
  EXPECT_TRUE(std::filesystem::exists(ck / "step-00000003")) << r.err;
  const std::string out = dir.file("ck.jsonl");
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "export", id, "--db", db, "-o", out}).code, 0);
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("\"type\":\"checkpoint\""), std::string::npos) << text.substr(0, 400);

  std::vector<std::string> again = {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--set", "train.steps=5", "--resume",
                                    ck.string()};
  again.insert(again.end(), small.begin(), small.end());
  Proc resumed = run(dir, again, {"MOE_RUNTIME=" + runtime});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  RunInfo info = RunReader(db).run(std::stoll(resumed.out));
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.last_step, 5);
  EXPECT_EQ(info.n_steps, 2);  // steps 4 and 5: it continued from step 3
  // Remote runs keep no checkpoints: asking for them there is a usage error, not ignored.
  Proc remote = run(dir, {MOE_CLI, "run", preset("tiny-cpu.json"), "--db", db, "--hosts", dir.file("hosts.txt"),
                          "--resume", ck.string()});
  EXPECT_EQ(remote.code, 2) << remote.err;
  EXPECT_NE(remote.err.find("--resume"), std::string::npos) << remote.err;
}


// Another engine's runs, recognised by content, recorded beside a native run and compared with it.
TEST_F(Cli, ImportsTensorBoardAndMegatronRunsBesideANativeOne) {
  const std::string data = std::string(MOE_EXTERNAL_DATA) + "/";
  Proc tb = run(dir, {MOE_CLI, "runs", "import", data + "megatron.tfevents", "--db", db, "--name", "megatron tb"});
  ASSERT_EQ(tb.code, 0) << tb.err;
  EXPECT_NE(tb.err.find("40 step(s) from a tensorboard file, status completed"), std::string::npos) << tb.err;
  EXPECT_NE(tb.err.find("not stored: moe/load_balancing_loss_layer_0"), std::string::npos) << tb.err;
  Proc log = run(dir, {MOE_CLI, "runs", "import", data + "megatron.log", "--db", db});
  ASSERT_EQ(log.code, 0) << log.err;
  const std::string native = dir.file("native.jsonl");
  test::write_file(native, synthetic_stream(SyntheticShape{.steps = 40, .layers = 2, .experts = 4, .ranks = 0}));
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "import", native, "--db", db}).code, 0);

  Proc list = run(dir, {MOE_CLI, "runs", "list", "--db", db, "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  const auto runs = nlohmann::json::parse(list.out);
  ASSERT_EQ(runs.size(), 3u);
  // The exported stream of an imported run passes the contract checker.
  const std::string out = dir.file("tb-export.jsonl");
  ASSERT_EQ(run(dir, {MOE_CLI, "runs", "export", "megatron tb", "--db", db, "--format", "jsonl", "-o", out}).code, 0);
  EXPECT_EQ(check_stream(dir, out), "");
  Proc cmp = run(dir, {MOE_CLI, "runs", "compare", "megatron tb", "megatron.log", "synthetic", "--db", db});
  ASSERT_EQ(cmp.code, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("megatron tb"), std::string::npos) << cmp.out;

  // A corrupt event file is refused with the byte offset, and nothing is recorded.
  std::string bytes = test::read_file(data + "megatron.tfevents");
  bytes[bytes.size() - 10] ^= 0x01;
  const std::string bad = dir.file("bad.tfevents");
  test::write_file(bad, bytes);
  Proc refused = run(dir, {MOE_CLI, "runs", "import", bad, "--db", db});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("data CRC mismatch"), std::string::npos) << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_EQ(nlohmann::json::parse(run(dir, {MOE_CLI, "runs", "list", "--db", db, "--json"}).out).size(), 3u);
}

}  // namespace
}  // namespace moe::store
