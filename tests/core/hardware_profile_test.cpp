// Hardware profiles and the resources lookup.
#include "hardware_profile.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "error.h"
#include "resources.h"
#include "test_paths.h"

using namespace moe;
using json = nlohmann::json;

namespace {

std::string error_of(const json& doc) {
  try {
    parse_hardware_profiles(doc, "hw.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json one(json profile) { return json{{"profiles", {{"X", profile}}}}; }

json valid() {
  return {{"memory_gib", 80}, {"peak_tflops_bf16", 989.4}, {"peak_tflops_fp32", 66.9},
          {"intra_node_gb_s", 450}, {"inter_node_gb_s", 50}};
}

}  // namespace

TEST(Hardware, BuiltinProfilesFromDatasheets) {
  const auto& all = builtin_hardware_profiles();
  for (const char* n : {"H100-SXM", "H200", "A100-80GB", "B200", "cpu-2core"}) {
    const HardwareProfile& h = find_hardware(all, n);
    EXPECT_GT(h.memory_bytes, 1e9) << n;
    EXPECT_GE(h.peak_flops_bf16, h.peak_flops_fp32) << n;
    EXPECT_GE(h.intra_node_bw, h.inter_node_bw) << n;
    EXPECT_FALSE(h.source.empty()) << n;
  }
  const HardwareProfile& h100 = find_hardware(all, "H100-SXM");
  EXPECT_EQ(h100.memory_bytes, 80.0 * (1 << 30));
  EXPECT_NEAR(h100.peak_flops_bf16, 989.4e12, 1);
  EXPECT_EQ(find_hardware(all, "H200").memory_bytes, 141.0 * (1 << 30));
  EXPECT_NEAR(find_hardware(all, "cpu-2core").peak_flops_fp32, 205e9, 1);
}

TEST(Hardware, UnknownNameSuggests) {
  try {
    find_hardware(builtin_hardware_profiles(), "H100-SMX");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("cluster.hardware: unknown hardware profile 'H100-SMX' (did you mean 'H100-SXM'?); known: ", 0), 0u)
        << m;
  }
}

TEST(Hardware, ParseErrorsNameTheField) {
  EXPECT_EQ(error_of(json::array()), "hw.json: expected an object with a \"profiles\" object");
  EXPECT_EQ(error_of(json{{"profiles", json::object()}}), "hw.json: lists no profile");
  json p = valid();
  p.erase("memory_gib");
  EXPECT_EQ(error_of(one(p)), "hw.json: profiles.X.memory_gib: missing");
  p = valid();
  p["memory_gib"] = -1;
  EXPECT_EQ(error_of(one(p)), "hw.json: profiles.X.memory_gib: must be positive");
  p = valid();
  p["peak_tflops_bf16"] = "fast";
  EXPECT_EQ(error_of(one(p)), "hw.json: profiles.X.peak_tflops_bf16: expected a number");
  p = valid();
  p["efficiency"] = 1.5;
  EXPECT_EQ(error_of(one(p)), "hw.json: profiles.X.efficiency: 1.5 is out of range (at most 1.0)");
  p = valid();
  p["memroy_gib"] = 1;
  EXPECT_EQ(error_of(one(p)), "hw.json: profiles.X.memroy_gib: unknown key (did you mean 'memory_gib'?)");
  EXPECT_EQ(error_of(one(valid())), "");
}

TEST(Resources, FoundFromTheSourceTreeAndByEnvironment) {
  EXPECT_TRUE(std::filesystem::exists(resources_dir() / "hardware.json"));
  EXPECT_TRUE(std::filesystem::exists(preset_path("tiny-cpu")));
  // MOE_RESOURCES_DIR wins, and a wrong one is an error rather than a silent fallback.
  auto dir = std::filesystem::temp_directory_path() / "moe-resources-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "hardware.json") << "{}";
  setenv("MOE_RESOURCES_DIR", dir.c_str(), 1);
  EXPECT_EQ(resources_dir(), dir);
  setenv("MOE_RESOURCES_DIR", "/nonexistent/moe", 1);
  EXPECT_THROW(resources_dir(), Error);
  unsetenv("MOE_RESOURCES_DIR");
  std::filesystem::remove_all(dir);
}
