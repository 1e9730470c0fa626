#pragma once
// Paths the core tests read: the repository's presets and the copied Hugging Face configs.
#include <filesystem>
#include <string>

namespace moe::test {

inline std::filesystem::path source_dir() { return MOE_SOURCE_DIR; }
inline std::filesystem::path preset(const std::string& name) {
  return source_dir() / "resources" / "presets" / (name + ".json");
}
inline std::filesystem::path hf_config(const std::string& file) {
  return std::filesystem::path(MOE_TEST_DATA_DIR) / "hf-configs" / file;
}

}  // namespace moe::test
