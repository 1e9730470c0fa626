// Faults: a NaN loss ends the run with run_end failed naming the step and layer, and the last
// good checkpoint stays the latest; SIGTERM ends it with run_end cancelled.
#include <chrono>
#include <csignal>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "app_test_util.h"
#include "checkpoint.h"

namespace moe::rt {
namespace {

using test::run_runtime;
using test::TempDir;

TEST(Faults, NanLossFailsNamingStepAndLayerAndKeepsTheLastGoodCheckpoint) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json", {{"runtime", {{"checkpoint_every", 1}}}}).string();
  // The fault hook fills the first parameter (embed_tokens) with NaN before step 3.
  const auto r = run_runtime({"train", spec, "--checkpoint-dir", (dir / "ck").string(), "--metrics", (dir / "m.jsonl").string()},
                             "MOE_FAULT_NAN_STEP=3");
  EXPECT_EQ(r.exit_code, 1);
  const auto recs = test::read_stream(dir / "m.jsonl");
  std::string out;
  EXPECT_EQ(test::check_stream(dir / "m.jsonl", &out), 0) << out;
  const auto end = recs.back();
  EXPECT_EQ(end["type"], "run_end");
  EXPECT_EQ(end["status"], "failed");
  EXPECT_EQ(end["steps"], 2);
  const std::string reason = end["reason"];
  EXPECT_NE(reason.find("loss is NaN at step 3"), std::string::npos) << reason;
  EXPECT_NE(reason.find("model.embed_tokens.weight"), std::string::npos) << reason;
  EXPECT_EQ(test::of_type(recs, "step").size(), 2u);
  // The latest checkpoint is step 2's, complete and loadable.
  EXPECT_EQ(resolve_checkpoint_dir(dir / "ck"), dir / "ck" / "step-00000002");
  EXPECT_NO_THROW(load_checkpoint(dir / "ck", true));
}

TEST(Faults, NanInALayerNamesTheLayer) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json").string();
  const auto r = run_runtime({"train", spec, "--metrics", (dir / "m.jsonl").string()},
                             "MOE_FAULT_NAN_STEP=2 MOE_FAULT_NAN_PARAM=model.layers.1.block_sparse_moe.experts.2.w2.weight");
  EXPECT_EQ(r.exit_code, 1);
  const std::string reason = test::read_stream(dir / "m.jsonl").back()["reason"];
  EXPECT_NE(reason.find("at step 2"), std::string::npos) << reason;
  EXPECT_NE(reason.find("layer 1"), std::string::npos) << reason;
}

TEST(Faults, SigtermCancelsWithRunEnd) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json", {{"train", {{"steps", 100000}}}}).string();
  const auto metrics = dir / "m.jsonl";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(MOE_RUNTIME_EXE, MOE_RUNTIME_EXE, "train", spec.c_str(), "--metrics", metrics.c_str(), "--checkpoint-dir",
          (dir / "ck").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the first step record, then ask the run to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (test::read_file(metrics).find("\"step\"") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  const auto recs = test::read_stream(metrics);
  EXPECT_EQ(recs.back()["type"], "run_end");
  EXPECT_EQ(recs.back()["status"], "cancelled");
  EXPECT_GE(recs.back()["steps"].get<int64_t>(), 1);
  std::string out;
  EXPECT_EQ(test::check_stream(metrics, &out), 0) << out;
  EXPECT_NO_THROW(load_checkpoint(dir / "ck", true));  // a checkpoint at cancel, resumable
}

}  // namespace
}  // namespace moe::rt
