// Presets: each loads, names its source, fits its cluster and its GPU without validation errors.
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "cost_model.h"
#include "hardware_profile.h"
#include "job_spec.h"
#include "spec_validation.h"
#include "test_paths.h"

using namespace moe;

namespace {

const char* kPresets[] = {"tiny-cpu", "switch-base-128", "mixtral-8x7b", "mixtral-8x22b", "deepseek-v3", "qwen3-30b-a3b"};

std::string all_text(const std::vector<Diagnostic>& ds) {
  std::string s;
  for (const auto& d : ds) s += "\n  " + d.text();
  return s;
}

}  // namespace

TEST(Presets, EveryPresetValidatesOnItsHardware) {
  for (const char* name : kPresets) {
    SCOPED_TRACE(name);
    JobSpec s = load_spec(test::preset(name));
    EXPECT_EQ(s.name, name);
    EXPECT_GT(s.comment.size(), 40u) << "the comment names the source";
    const HardwareProfile& hw = find_hardware(builtin_hardware_profiles(), s.cluster.hardware);
    auto ds = validate_spec(s, &hw);
    EXPECT_FALSE(has_errors(ds)) << all_text(ds);
    Plan p = plan_job(s, hw);
    EXPECT_LE(p.memory.peak, kMemoryWarnFraction * hw.memory_bytes) << "leave headroom on " << hw.name;
    EXPECT_EQ(s.parallel.world_size(), s.cluster.total_slots());
  }
}

TEST(Presets, NoOtherPresetFiles) {
  // A new preset must be added to kPresets so it is validated.
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_dir() / "resources" / "presets"))
    if (e.path().extension() == ".json") ++n;
  EXPECT_EQ(n, int(std::size(kPresets)));
}

TEST(Presets, TinyCpuTrainsOnTwoCores) {
  JobSpec s = load_spec(test::preset("tiny-cpu"));
  EXPECT_EQ(s.model.vocab_size, 256);
  EXPECT_EQ(s.model.seq_len, 128);
  EXPECT_EQ(s.model.d_model, 128);
  EXPECT_EQ(s.model.n_layers, 4);
  EXPECT_EQ(s.model.moe.num_experts, 8);
  EXPECT_EQ(s.model.moe.top_k, 2);
  EXPECT_EQ(s.parallel.world_size(), 1);
  EXPECT_EQ(s.runtime.backend, "cpu");
  EXPECT_EQ(s.cluster.hardware, "cpu-2core");
  const HardwareProfile& hw = find_hardware(builtin_hardware_profiles(), "cpu-2core");
  Plan p = plan_job(s, hw);
  // "Trains in minutes": the estimated run (steps × step time) is under 10 minutes.
  EXPECT_LT(double(s.train.steps) * p.time.step, 600.0);
}

// The layouts of published large runs (resources/presets/published/, bench/cost_model/
// published_runs.json): each loads, cites its source, fills its cluster, and plans. The only error
// allowed is the memory rule: those runs used a distributed optimizer and recomputation, which the
// cost model does not model (docs/cost-model.md §8).
TEST(Presets, PublishedRunLayoutsPlanAndAreEachBenchmarked) {
  const auto dir = test::source_dir() / "resources" / "presets" / "published";
  const auto bench = nlohmann::json::parse(read_text_file(test::source_dir() / "bench" / "cost_model" / "published_runs.json"));
  std::set<std::string> benchmarked;
  for (const auto& row : bench["rows"]) benchmarked.insert(row["spec"].get<std::string>());
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    ++n;
    const std::string name = e.path().stem().string();
    SCOPED_TRACE(name);
    JobSpec s = load_spec(e.path());
    EXPECT_EQ(s.name, "published-" + name);
    EXPECT_GT(s.comment.size(), 150u) << "the comment cites the published source and its layout";
    EXPECT_EQ(s.parallel.world_size(), s.cluster.total_slots());
    EXPECT_TRUE(benchmarked.count("published/" + name)) << "no row in bench/cost_model/published_runs.json";
    const HardwareProfile& hw = find_hardware(builtin_hardware_profiles(), s.cluster.hardware);
    for (const auto& d : validate_spec(s, &hw)) {
      if (d.severity == Severity::error) {
        EXPECT_NE(d.message.find("peak memory per GPU"), std::string::npos) << d.text();
      }
    }
    EXPECT_GT(plan_job(s, hw).time.step, 0.0);
  }
  EXPECT_EQ(n, int(benchmarked.size()));
}
