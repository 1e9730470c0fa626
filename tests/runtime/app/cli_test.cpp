// moe-runtime's command line: --help everywhere, one-line errors with non-zero exits for bad
// input and for settings this backend does not support, and a stream that keeps contract 3.3.
#include <gtest/gtest.h>

#include <filesystem>

#include "app_test_util.h"

namespace moe::rt {
namespace {

using test::run_runtime;
using test::TempDir;

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

TEST(Cli, HelpForEveryCommand) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"train", "--help"}, {"eval", "--help"}, {"bench", "--help"}}) {
    const auto r = run_runtime(args);
    EXPECT_EQ(r.exit_code, 0) << args[0];
    EXPECT_NE(r.out.find("usage: moe-runtime"), std::string::npos) << r.out;
  }
  const auto none = run_runtime({});
  EXPECT_EQ(none.exit_code, 2);
  const auto bad = run_runtime({"frobnicate"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(one_line(bad.err)) << bad.err;
  const auto bad_opt = run_runtime({"train", "x.json", "--bogus", "1"});
  EXPECT_EQ(bad_opt.exit_code, 2);
  EXPECT_NE(bad_opt.err.find("--bogus"), std::string::npos);
}

TEST(Cli, UnsupportedSettingsAreRefusedNamingTheField) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"parallel.tp=2", "parallel.tp"},       {"parallel.pp=2", "parallel.pp"},
      {"parallel.ep=2", "parallel.ep"},       {"model.attention=mla", "model.attention"},
      {"runtime.dtype=bf16", "runtime.dtype"},
  };
  for (const auto& [set, field] : cases) {
    const auto r = run_runtime({"train", spec, "--set", set});
    EXPECT_EQ(r.exit_code, 1) << set;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("run_start"), std::string::npos) << "no run may start: " << set;
  }
}

TEST(Cli, CudaBackendWithoutAGpuIsRefusedNamingTheField) {
  // With a GPU this trains (tests/runtime/cuda covers it); without one, or in a build without
  // CUDA, it is a one-line refusal before any run starts.
  if (std::filesystem::exists("/dev/nvidia0")) GTEST_SKIP() << "a GPU is present: the CUDA tests cover this";
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json").string();
  const auto r = run_runtime({"train", spec, "--set", "runtime.backend=cuda"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("runtime.backend"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("run_start"), std::string::npos);
}

TEST(Cli, DataErrorsAreOneLine) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json").string();
  auto r = run_runtime({"train", spec, "--set", "train.data.kind=text", "--set", "train.data.path=" + (dir / "none.txt").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("none.txt: no such file"), std::string::npos) << r.err;
  test::write_file(dir / "empty.txt", "");
  r = run_runtime({"train", spec, "--set", "train.data.kind=text", "--set", "train.data.path=" + (dir / "empty.txt").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("empty.txt: is empty"), std::string::npos) << r.err;
  test::write_file(dir / "short.txt", std::string(40, 'a'));  // < seq_len + 1 = 33 for training after the split
  r = run_runtime({"train", spec, "--set", "train.data.kind=text", "--set", "train.data.path=" + (dir / "short.txt").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("shorter than one sequence"), std::string::npos) << r.err;
}

TEST(Cli, TrainingStreamKeepsTheContract) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json").string();
  const auto r = run_runtime({"train", spec, "--set", "train.steps=3", "--checkpoint-dir", (dir / "ck").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  test::write_file(dir / "m.jsonl", r.out);  // the stream went to stdout
  std::string out;
  EXPECT_EQ(test::check_stream(dir / "m.jsonl", &out), 0) << out;
  const auto recs = test::read_stream(dir / "m.jsonl");
  EXPECT_EQ(recs.front()["type"], "run_start");
  EXPECT_EQ(test::of_type(recs, "step").size(), 3u);
  EXPECT_EQ(test::of_type(recs, "expert_load").size(), 3u * 2);  // two MoE layers
  for (const auto& s : test::of_type(recs, "step")) {
    EXPECT_EQ(s["tokens"], 4 * 2 * 32);
    EXPECT_GT(s["tokens_per_s"].get<double>(), 0.0);
  }
  for (const auto& e : test::of_type(recs, "expert_load")) {
    int64_t sum = 0;
    for (const auto& c : e["counts"]) sum += c.get<int64_t>();
    EXPECT_EQ(sum, 4 * 2 * 32 * 2);  // every token picks top_k = 2 experts, over 2 micro-batches
  }
  const auto end = recs.back();
  EXPECT_EQ(end["status"], "completed");
  EXPECT_EQ(end["steps"], 3);
  EXPECT_GT(end["peak_rss_bytes"].get<int64_t>(), 1 << 20);
  EXPECT_EQ(test::of_type(recs, "checkpoint").back()["path"], (dir / "ck" / "step-00000003").string());
}

TEST(Cli, BenchPrintsTheLayerTable) {
  TempDir dir;
  const auto spec = test::write_small_spec(dir / "s.json").string();
  const auto r = run_runtime({"bench", spec, "--tokens", "64", "--iterations", "1", "--threads", "1", "--skew", "1.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"tokens/s", "expert GEMMs GFLOP/s", "time router", "time permute", "time experts", "time combine"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row << " missing from:\n" << r.out;
  const auto bad = run_runtime({"bench", spec, "--tokens", "many"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--tokens"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace moe::rt
