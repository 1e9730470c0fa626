// Finds the resources directory (see resources.h for the search order).
#include "resources.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"

namespace moe {

namespace {

namespace fs = std::filesystem;

bool holds_resources(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "hardware.json", ec);
}

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

fs::path resources_dir() {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("MOE_RESOURCES_DIR"); env && *env) {
    // An explicit choice must work: falling back silently would hide a typo.
    if (holds_resources(env)) return fs::path(env);
    throw Error(std::string("MOE_RESOURCES_DIR: ") + env + " holds no hardware.json");
  }
  fs::path dir = executable_dir();
  if (!dir.empty()) {
    tried.push_back(dir / ".." / "share" / "moe-studio" / "resources");
    fs::path up = dir;
    for (int i = 0; i < 5 && !up.empty(); ++i, up = up.parent_path()) tried.push_back(up / "resources");
  }
#ifdef MOE_SOURCE_DIR
  tried.push_back(fs::path(MOE_SOURCE_DIR) / "resources");
#endif
  for (const auto& p : tried)
    if (holds_resources(p)) return fs::weakly_canonical(p);
  std::string list;
  for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p.string();
  throw Error("resources: no directory with hardware.json found (set MOE_RESOURCES_DIR); looked in " + list);
}

fs::path preset_path(const std::string& name) { return resources_dir() / "presets" / (name + ".json"); }

}  // namespace moe
