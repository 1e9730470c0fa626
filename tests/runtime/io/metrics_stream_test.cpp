// The metrics stream: every record type keeps contract 3.3, checked by shared/tools/check-stream,
// one line per record, readable while the writer is still open (flushed per record).
#include <cstdlib>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metrics_stream.h"
#include "test_util.h"

namespace moe::rt {
namespace {

int run_check_stream(const std::filesystem::path& file, std::string* output) {
  const std::string cmd = std::string("python3 ") + MOE_CHECK_STREAM + " " + file.string() + " 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) *output += buf;
  return WEXITSTATUS(::pclose(p));
}

TEST(MetricsStream, RecordsKeepTheContractAndAreFlushedPerRecord) {
  ASSERT_TRUE(std::filesystem::exists(MOE_CHECK_STREAM)) << "contract checker not found at " << MOE_CHECK_STREAM;
  test::TempDir dir;
  const auto file = dir / "m.jsonl";
  {
    MetricsStream m(file.string());
    RunStartRecord start;
    start.spec = R"({"name": "t"})", start.world_size = 1, start.backend = "cpu", start.hosts = R"(["localhost"])";
    m.run_start(start);
    EXPECT_EQ(test::read_file(file).back(), '\n');  // visible before the writer closes
    StepRecord s;
    s.step = 1;
    s.loss = 5.5;
    s.tokens = 1024;
    s.step_ms = 12.5;
    s.tokens_per_s = 81920;
    s.grad_norm = 0.7;
    m.step(s);
    m.expert_load(1, 0, {3, 5, 0, 8}, {0, 1, 0, 2});
    m.checkpoint(1, "/tmp/x/step-00000001");
    RunEndRecord end;
    end.peak_rss_bytes = 1234;
    m.run_end("completed", 1, "", end);
    const std::string text = test::read_file(file);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);
  }
  std::string out;
  EXPECT_EQ(run_check_stream(file, &out), 0) << out;
  std::istringstream lines(test::read_file(file));
  std::string line;
  std::vector<nlohmann::json> recs;
  while (std::getline(lines, line)) recs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs[0]["type"], "run_start");
  EXPECT_EQ(recs[0]["schema"], 1);
  EXPECT_EQ(recs[0]["started_at"].get<std::string>().size(), 20u);
  EXPECT_EQ(recs[1]["grad_norm"], 0.7);
  EXPECT_EQ(recs[2]["dropped"], nlohmann::json({0, 1, 0, 2}));
  EXPECT_EQ(recs[4]["status"], "completed");
  EXPECT_EQ(recs[4]["peak_rss_bytes"], 1234);
  EXPECT_FALSE(recs[4].contains("reason"));
}

TEST(MetricsStream, CheckerCatchesABrokenStream) {
  // The checker must be able to fail, or the test above proves nothing.
  test::TempDir dir;
  const auto file = dir / "bad.jsonl";
  {
    MetricsStream m(file.string());
    RunStartRecord start;
    start.world_size = 1, start.backend = "cpu", start.hosts = R"(["localhost"])";
    m.run_start(start);
    m.expert_load(1, 0, {1, 2}, {2, 0});  // dropped more than chose: a contract violation
    m.run_end("failed", 1, "loss is NaN at step 1");
  }
  std::string out;
  EXPECT_EQ(run_check_stream(file, &out), 1) << out;
  EXPECT_NE(out.find("dropped more"), std::string::npos) << out;
}

TEST(MetricsStream, UnwritableTargetIsAOneLineError) {
  test::expect_error([] { MetricsStream m("/nonexistent-dir/m.jsonl"); }, {"--metrics", "/nonexistent-dir/m.jsonl"});
}

}  // namespace
}  // namespace moe::rt
