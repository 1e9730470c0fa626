#pragma once
// Where the bundled resources (presets, hardware profiles, corpus) are: the studio, the CLI and the
// tests all run from different places, installed or from a build tree.
#include <filesystem>

namespace moe {

// The first existing directory holding hardware.json among: $MOE_RESOURCES_DIR; beside the
// executable (../share/moe-studio/resources, then resources/ in a parent up to 4 levels, which
// covers build/cli/moe in a source tree); MOE_SOURCE_DIR/resources (compiled in).
// Throws moe::Error listing the places it looked.
std::filesystem::path resources_dir();

// resources_dir()/presets/NAME.json
std::filesystem::path preset_path(const std::string& name);

}  // namespace moe
