// A runtime bundle (scripts/bundle-runtime) made into a temporary directory finds its presets and
// corpus in its own resources/ (core/resources.h looks beside the executable first), not in the
// source tree compiled in: a preset edited in the bundle is the one used, and a corpus removed from
// the bundle is reported missing at the bundle's path.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command; returns its exit status, output into `out`.
int sh(const std::string& cmd, const fs::path& out) {
  const int st = std::system((cmd + " >'" + out.string() + "' 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(BundleResources, BundledRuntimeUsesItsOwnPresetsAndCorpus) {
  const fs::path tmp = fs::temp_directory_path() / ("moe-bundle-res-" + std::to_string(std::random_device{}()));
  const fs::path bundle = tmp / "bundle";
  fs::create_directories(tmp);
  const fs::path build = fs::path(MOE_RUNTIME_EXE).parent_path().parent_path().parent_path();
  ASSERT_EQ(sh(std::string("'") + MOE_BUNDLE_SCRIPT + "' '" + build.string() + "' '" + bundle.string() + "'", tmp / "b.log"), 0)
      << slurp(tmp / "b.log");
  ASSERT_TRUE(fs::exists(bundle / "resources/corpus/kjv.txt"));

  // The bundle's tiny-cpu preset, renamed: a run of "tiny-cpu" must say that name.
  const fs::path preset = bundle / "resources/presets/tiny-cpu.json";
  std::string text = slurp(preset);
  const size_t at = text.find("\"name\": \"tiny-cpu\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 18, "\"name\": \"from-the-bundle\"");
  std::ofstream(preset, std::ios::trunc) << text;

  const std::string run = "env -u MOE_RESOURCES_DIR -u MOE_CORPUS '" + (bundle / "moe-runtime").string() +
                          "' train tiny-cpu --set train.steps=1 --set model.n_layers=1 --set model.seq_len=16"
                          " --set model.d_model=32 --set model.moe.d_expert=32 --set train.warmup_steps=0"
                          " --set train.data.val_fraction=0.001 --metrics '" + (tmp / "m.jsonl").string() + "'";
  ASSERT_EQ(sh(run, tmp / "r1.log"), 0) << slurp(tmp / "r1.log");
  EXPECT_NE(slurp(tmp / "m.jsonl").find("from-the-bundle"), std::string::npos) << slurp(tmp / "m.jsonl").substr(0, 400);

  // Without the bundle's corpus the run fails naming the bundle's path (no silent source-tree fallback).
  fs::remove(bundle / "resources/corpus/kjv.txt");
  EXPECT_NE(sh(run, tmp / "r2.log"), 0);
  const std::string log = slurp(tmp / "r2.log");
  EXPECT_NE(log.find((bundle / "resources").string()), std::string::npos) << log;
  EXPECT_NE(log.find("kjv.txt"), std::string::npos) << log;
  fs::remove_all(tmp);
}

}  // namespace
