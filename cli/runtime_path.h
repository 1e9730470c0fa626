#pragma once
// Where `moe` finds moe-runtime: $MOE_RUNTIME, else beside this program's build tree
// (build/cli/moe → build/runtime/app/moe-runtime) or install folder (bin/moe → bin/moe-runtime).
#include <filesystem>

namespace moe::cli {

// The folder of this executable (/proc/self/exe).
std::filesystem::path self_dir();
// The runtime to start; throws moe::Error saying where it looked when there is none.
std::filesystem::path find_runtime();

}  // namespace moe::cli
